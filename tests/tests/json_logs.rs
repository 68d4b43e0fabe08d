//! `LIVECHAT_LOG_FORMAT=json`: every line `livechat serve` logs is one JSON object, and a line
//! logged inside an executor carries that executor's span and its `id` field, so a log pipeline
//! can group by executor (and by connection, `conn{peer}`) without parsing text.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use livechat_tests::livechat_binary;

/// One log line, checked: a JSON object with a timestamp, a level and fields; the ids of the
/// executor spans it was logged in go to `executors`.
fn check(line: &str, executors: &mut BTreeSet<String>) -> anyhow::Result<()> {
    let v: serde_json::Value =
        serde_json::from_str(line).map_err(|e| anyhow::anyhow!("not a JSON line ({e}): {line}"))?;
    anyhow::ensure!(v["timestamp"].is_string(), "no timestamp: {line}");
    anyhow::ensure!(v["level"].is_string(), "no level: {line}");
    anyhow::ensure!(v["fields"].is_object(), "no fields: {line}");
    for s in v["spans"].as_array().into_iter().flatten() {
        if s["name"] == "executor" {
            executors.insert(s["id"].to_string());
        }
    }
    Ok(())
}

#[test]
fn json_log_lines_carry_the_executor_span() -> anyhow::Result<()> {
    let mut child = Command::new(livechat_binary()?)
        .args(["serve", "--listen", "127.0.0.1:0", "--executors", "2"])
        .args(["--drain-delay", "0ms"])
        .env("LIVECHAT_LOG_FORMAT", "json")
        .env("LIVECHAT_LOG", "info,livechat_gateway::runtime=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut lines = BufReader::new(child.stderr.take().expect("piped")).lines();
    let mut executors = BTreeSet::new();
    let mut seen = 0;
    // Until both executors have logged ("accepting connections", inside their spans).
    while executors.len() < 2 {
        let Some(line) = lines.next() else {
            anyhow::bail!("the server's log ended after {seen} lines");
        };
        check(&line?, &mut executors)?;
        seen += 1;
    }
    // SIGTERM (std can only send SIGKILL), then every line until the exit is JSON too.
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    for line in lines {
        check(&line?, &mut executors)?;
        seen += 1;
    }
    let status = child.wait()?;
    anyhow::ensure!(status.success(), "exit {status}");
    assert_eq!(
        executors.len(),
        2,
        "executor spans in {seen} lines: {executors:?}"
    );
    Ok(())
}
