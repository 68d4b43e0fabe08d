//! The Lua scripts of the Redis backend. Each touches the keys of one Redis Cluster slot only
//! (every key of a script shares one hash tag), so each is atomic on its own; steps that span
//! slots are ordered and locked by `RedisStore::commit` (see ARCHITECTURE.md, "Redis key
//! schema").

use crate::redis::Script;

/// Commits one conversation step (conversation slot): version compare-and-set or activity
/// touch, `clientMessageId` dedupe, `seq` assignment, append + trim, the assignment key, TTLs,
/// and PUBLISH of every stored message (`m` + JSON) and notice (`n` + JSON) to the room
/// channel — in the same script, so every subscriber sees Redis's order.
///
/// KEYS: meta, messages, seq, cmids, assignment.
/// ARGV: mode (`R` replace / `T` touch), expected version, meta JSON, status, updatedAt ms,
/// assignment (`` keep / `-` delete / agent id), buffer, ttl ms, channel, then for `R` the
/// customer id and the agent id (`` none) — kept as fields `cu` and `ag` — and for `T` `` and
/// the author of its messages (`c<id>` the customer / `a<id>` the agent the metadata names /
/// `` unchecked), n messages, then per message its JSON without
/// `seq` and its clientMessageId (`` none), then n notices and each notice's JSON.
/// A touch checks, in order: the conversation exists, the author (before the retry lookup, so
/// nobody reads another sender's message by its clientMessageId), a retry, CLOSED.
/// Returns `{'ok', seq...}`, `{'dup', message JSON}`, `{'conflict'}`, `{'closed'}`,
/// `{'forbidden'}` or `{'notfound'}`.
pub const COMMIT: &str = r#"
local mode = ARGV[1]
local n = tonumber(ARGV[12])
local buffer = tonumber(ARGV[7])
local ttl = ARGV[8]
local channel = ARGV[9]
local h
if mode == 'T' then
  h = redis.call('HMGET', KEYS[1], 'st', 'up', 'cu', 'ag')
  if not h[1] then return {'notfound'} end
  local author = ARGV[11]
  if author ~= '' then
    local agent = string.sub(author, 1, 1) == 'a'
    local party
    if agent then party = h[4] else party = h[3] end
    if not party then
      -- Written before the parties were kept as fields: read them from the metadata.
      local meta = cjson.decode(redis.call('HGET', KEYS[1], 'meta'))
      local p = agent and meta.agent or meta.customer
      party = (type(p) == 'table' and p.id) or ''
    end
    if party ~= string.sub(author, 2) then return {'forbidden'} end
  end
end
if n == 1 and ARGV[14] ~= '' then
  local s = redis.call('ZSCORE', KEYS[4], ARGV[14])
  if s then
    local last = tonumber(redis.call('GET', KEYS[3]) or '0')
    local idx = redis.call('LLEN', KEYS[2]) - 1 - (last - tonumber(s))
    if idx >= 0 then
      local m = redis.call('LINDEX', KEYS[2], idx)
      if m then return {'dup', m} end
    end
  end
end
local t = redis.call('TIME')
local act = t[1] * 1000000 + t[2]
if mode == 'R' then
  local v = redis.call('HGET', KEYS[1], 'v')
  local expected = tonumber(ARGV[2])
  if expected == 0 then
    if v then return {'conflict'} end
  else
    if not v then return {'notfound'} end
    if tonumber(v) ~= expected then return {'conflict'} end
  end
  redis.call('HSET', KEYS[1], 'meta', ARGV[3], 'v', expected + 1, 'st', ARGV[4],
    'up', ARGV[5], 'act', act, 'cu', ARGV[10], 'ag', ARGV[11])
else
  if h[1] == 'CLOSED' then return {'closed'} end
  if tonumber(ARGV[5]) > tonumber(h[2] or '0') then
    redis.call('HSET', KEYS[1], 'up', ARGV[5], 'act', act)
  else
    redis.call('HSET', KEYS[1], 'act', act)
  end
end
if ARGV[6] == '-' then
  redis.call('DEL', KEYS[5])
elseif ARGV[6] ~= '' then
  redis.call('SET', KEYS[5], ARGV[6])
end
local out = {'ok'}
local i = 13
for _ = 1, n do
  local seq = redis.call('INCR', KEYS[3])
  local json = '{"seq":' .. seq .. ',' .. string.sub(ARGV[i], 2)
  redis.call('RPUSH', KEYS[2], json)
  if ARGV[i + 1] ~= '' then redis.call('ZADD', KEYS[4], seq, ARGV[i + 1]) end
  redis.call('PUBLISH', channel, 'm' .. json)
  out[#out + 1] = seq
  i = i + 2
end
if n > 0 then
  redis.call('LTRIM', KEYS[2], -buffer, -1)
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', tonumber(redis.call('GET', KEYS[3])) - buffer)
end
local notices = tonumber(ARGV[i])
for k = 1, notices do
  redis.call('PUBLISH', channel, 'n' .. ARGV[i + k])
end
for _, key in ipairs(KEYS) do
  redis.call('PEXPIRE', key, ttl)
end
return out
"#;

/// Reads metadata and a page of messages in one consistent snapshot (conversation slot).
///
/// KEYS: meta, messages, seq. ARGV: `latest` or `after`, after, limit.
/// Returns `{}` when the conversation does not exist, else `{meta JSON, updatedAt, complete
/// (0/1), last seq, message JSON...}`.
pub const READ: &str = r#"
local h = redis.call('HMGET', KEYS[1], 'meta', 'up')
if not h[1] then return {} end
local last = tonumber(redis.call('GET', KEYS[3]) or '0')
local len = redis.call('LLEN', KEYS[2])
local first = last - len + 1
local limit = tonumber(ARGV[3])
local from, to, complete
if ARGV[1] == 'latest' then
  from = math.max(len - limit, 0)
  to = len - 1
  complete = (from > 0 or first == 1) and 1 or 0
else
  local after = tonumber(ARGV[2])
  complete = (after + 1 >= first) and 1 or 0
  from = math.max(after + 1 - first, 0)
  to = math.min(from + limit - 1, len - 1)
end
local out = {h[1], h[2] or '0', complete, last}
if limit > 0 and from <= to then
  for _, m in ipairs(redis.call('LRANGE', KEYS[2], from, to)) do out[#out + 1] = m end
end
return out
"#;

/// The queue's part of a step (queue slot): `add` (returns the 0-based position), `remove`
/// (returns 1 if it was there), `check` (1 if enqueued at or before ARGV[3], else 0). Changes
/// PUBLISH a ping on the queue channel, which every node's snapshot coalescer listens to.
///
/// KEYS: pending, entries. ARGV: op, conversation id, score or cutoff ms, entry JSON, channel.
pub const QUEUE: &str = r#"
local op = ARGV[1]
if op == 'add' then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])
  redis.call('PUBLISH', ARGV[5], '1')
  return redis.call('ZRANK', KEYS[1], ARGV[2])
elseif op == 'remove' then
  local removed = redis.call('ZREM', KEYS[1], ARGV[2])
  redis.call('HDEL', KEYS[2], ARGV[2])
  if removed > 0 then redis.call('PUBLISH', ARGV[5], '1') end
  return removed
else
  local s = redis.call('ZSCORE', KEYS[1], ARGV[2])
  if s and tonumber(s) <= tonumber(ARGV[3]) then return 1 end
  return 0
end
"#;

/// An agent's slots (agent slot): `claim` takes one unless the agent holds `max` (returns
/// `{granted, newly_held, newly_indexed}` as 0/1), `release` frees it, `unclaim` undoes a claim
/// whose commit was refused (ARGV[5] = 1 also drops it from the index).
///
/// KEYS: held (set), history (sorted set by accept time). ARGV: op, conversation id, max, now
/// ms, drop-from-index flag.
pub const AGENT: &str = r#"
local op = ARGV[1]
if op == 'claim' then
  if redis.call('SISMEMBER', KEYS[1], ARGV[2]) == 1 then return {1, 0, 0} end
  if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[3]) then return {0, 0, 0} end
  redis.call('SADD', KEYS[1], ARGV[2])
  local indexed = redis.call('ZADD', KEYS[2], 'NX', ARGV[4], ARGV[2])
  return {1, 1, indexed}
elseif op == 'release' then
  return {redis.call('SREM', KEYS[1], ARGV[2]), 0, 0}
else
  redis.call('SREM', KEYS[1], ARGV[2])
  if ARGV[5] == '1' then redis.call('ZREM', KEYS[2], ARGV[2]) end
  return {1, 0, 0}
end
"#;

/// Releases a lock only if this owner still holds it (compare-and-delete).
pub const UNLOCK: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

/// The backend's scripts, hashed once per executor.
#[derive(Debug)]
pub struct Scripts {
    /// [`COMMIT`].
    pub commit: Script,
    /// [`READ`].
    pub read: Script,
    /// [`QUEUE`].
    pub queue: Script,
    /// [`AGENT`].
    pub agent: Script,
    /// [`UNLOCK`].
    pub unlock: Script,
}

impl Default for Scripts {
    fn default() -> Self {
        Self::publishing_with("PUBLISH")
    }
}

impl Scripts {
    /// The scripts, publishing with `publish` (`PUBLISH`, or `SPUBLISH` on a Redis Cluster:
    /// each channel a script publishes to shares the slot of the keys it touches).
    pub fn publishing_with(publish: &str) -> Self {
        let with =
            |source: &str| Script::new(&source.replace("'PUBLISH'", &format!("'{publish}'")));
        Self {
            commit: with(COMMIT),
            read: Script::new(READ),
            queue: with(QUEUE),
            agent: Script::new(AGENT),
            unlock: Script::new(UNLOCK),
        }
    }
}
