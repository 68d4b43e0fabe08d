//! The loadgen's own CPU use (getrusage user + sys over wall time), reported next to every
//! result so a saturated loadgen is never mistaken for a slow server.

use std::time::{Duration, Instant};

/// User + system CPU time this process has used so far.
#[allow(unsafe_code)]
pub fn process_cpu() -> Duration {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a full `rusage` into the pointer we pass; RUSAGE_SELF is valid.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr()) };
    if rc != 0 {
        return Duration::ZERO;
    }
    // SAFETY: getrusage returned 0, so the struct is initialised (and it was zeroed anyway).
    let ru = unsafe { ru.assume_init() };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// CPU use over an interval, as a percentage of one core.
#[derive(Debug, Clone, Copy)]
pub struct CpuMeter {
    wall: Instant,
    cpu: Duration,
}

impl CpuMeter {
    /// Starts measuring now.
    pub fn start() -> Self {
        Self {
            wall: Instant::now(),
            cpu: process_cpu(),
        }
    }

    /// Percent of one core used since [`CpuMeter::start`] (100 = one core saturated).
    pub fn percent(&self) -> f64 {
        let wall = self.wall.elapsed().as_secs_f64();
        if wall <= 0.0 {
            return 0.0;
        }
        (process_cpu().saturating_sub(self.cpu)).as_secs_f64() / wall * 100.0
    }
}

/// Raises RLIMIT_NOFILE (soft, and hard when allowed) to at least `want`; returns the soft limit
/// now in force. An error explains why the limit could not be raised far enough.
#[allow(unsafe_code)]
pub fn raise_nofile(want: u64) -> Result<u64, String> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(format!("getrlimit: {}", std::io::Error::last_os_error()));
    }
    if lim.rlim_cur >= want {
        return Ok(lim.rlim_cur);
    }
    let wanted = libc::rlimit {
        rlim_cur: want,
        rlim_max: lim.rlim_max.max(want),
    };
    // SAFETY: setrlimit reads the struct we own.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) } == 0 {
        return Ok(want);
    }
    let err = std::io::Error::last_os_error();
    // Not privileged: take what the hard limit allows.
    let capped = libc::rlimit {
        rlim_cur: lim.rlim_max,
        rlim_max: lim.rlim_max,
    };
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &capped) } == 0 {
        return Err(format!(
            "RLIMIT_NOFILE raised only to the hard limit {} (wanted {want}: {err})",
            lim.rlim_max
        ));
    }
    Err(format!(
        "RLIMIT_NOFILE stays at {} (wanted {want}: {err})",
        lim.rlim_cur
    ))
}

/// User and system CPU time of a process (or summed over several).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTimes {
    /// Time in user space.
    pub user: Duration,
    /// Time in the kernel (system calls, and softirq work charged to the process).
    pub sys: Duration,
}

impl CpuTimes {
    /// User + system.
    pub fn total(&self) -> Duration {
        self.user + self.sys
    }

    /// What was used between `before` and `self`.
    pub fn since(&self, before: &CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user.saturating_sub(before.user),
            sys: self.sys.saturating_sub(before.sys),
        }
    }
}

impl std::ops::Add for CpuTimes {
    type Output = CpuTimes;
    fn add(self, o: CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user + o.user,
            sys: self.sys + o.sys,
        }
    }
}

/// User and system CPU time of another process (all its threads), from `/proc/<pid>/stat`
/// (fields 14 and 15).
pub fn pid_times(pid: u32) -> Option<CpuTimes> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields after it follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut f = rest.split_whitespace().skip(11);
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    #[allow(unsafe_code)]
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(CpuTimes {
        user: Duration::from_secs_f64(utime as f64 / hz as f64),
        sys: Duration::from_secs_f64(stime as f64 / hz as f64),
    })
}

/// User + system CPU time of another process, from `/proc/<pid>/stat` (fields 14 and 15).
pub fn pid_cpu(pid: u32) -> Option<Duration> {
    pid_times(pid).map(|t| t.total())
}

/// CPU times of several processes at one instant (one entry per pid; `None` when unreadable).
#[derive(Debug, Clone)]
pub struct PidsSample(Vec<Option<CpuTimes>>);

impl PidsSample {
    /// Reads every pid now.
    pub fn take(pids: &[u32]) -> Self {
        Self(pids.iter().map(|&p| pid_times(p)).collect())
    }

    /// Per process, what it used since `before` (same pids, same order).
    pub fn per_pid_since(&self, before: &PidsSample) -> Vec<Option<CpuTimes>> {
        self.0
            .iter()
            .zip(&before.0)
            .map(|(now, then)| Some(now.as_ref()?.since(then.as_ref()?)))
            .collect()
    }

    /// Summed over every process, what they used since `before`; `None` when there are no
    /// pids or one of them could not be read (a process that died is not counted as idle).
    pub fn sum_since(&self, before: &PidsSample) -> Option<CpuTimes> {
        let per = self.per_pid_since(before);
        if per.is_empty() {
            return None;
        }
        per.into_iter()
            .try_fold(CpuTimes::default(), |acc, t| Some(acc + t?))
    }
}

/// CPU use of the server under test over an interval (when its pid is known).
#[derive(Debug, Clone, Copy)]
pub struct PidMeter {
    pid: Option<u32>,
    wall: Instant,
    cpu: Option<Duration>,
}

impl PidMeter {
    /// Starts measuring `pid` now (`None`: nothing to measure).
    pub fn start(pid: Option<u32>) -> Self {
        Self {
            pid,
            wall: Instant::now(),
            cpu: pid.and_then(pid_cpu),
        }
    }

    /// Percent of one core used by the process since [`PidMeter::start`].
    pub fn percent(&self) -> Option<f64> {
        let now = pid_cpu(self.pid?)?;
        let wall = self.wall.elapsed().as_secs_f64();
        let before = self.cpu?;
        (wall > 0.0).then(|| now.saturating_sub(before).as_secs_f64() / wall * 100.0)
    }
}

/// Busy CPU time of the whole machine (all CPUs), from the `cpu` line of `/proc/stat`.
pub fn machine_busy() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal: everything but idle and iowait.
    let busy = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| f.get(i))
        .sum::<u64>();
    // SAFETY: sysconf has no preconditions.
    #[allow(unsafe_code)]
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(Duration::from_secs_f64(busy as f64 / hz as f64))
}

/// CPU used on this machine by processes other than the loadgen and the processes under test
/// (servers, backends), over an interval: shows when a shared machine disturbed a measurement.
#[derive(Debug, Clone)]
pub struct ForeignMeter {
    wall: Instant,
    busy: Option<Duration>,
    own: Duration,
    pids: Vec<u32>,
    before: Vec<Option<Duration>>,
}

impl ForeignMeter {
    /// Starts measuring now; `pid` is the server under test.
    pub fn start(pid: Option<u32>) -> Self {
        Self::start_excluding(pid.as_slice())
    }

    /// Starts measuring now; `pids` (servers, backends) are not counted as foreign.
    pub fn start_excluding(pids: &[u32]) -> Self {
        Self {
            wall: Instant::now(),
            busy: machine_busy(),
            own: process_cpu(),
            pids: pids.to_vec(),
            before: pids.iter().map(|&p| pid_cpu(p)).collect(),
        }
    }

    /// Percent of one core used by everything else since [`ForeignMeter::start`].
    pub fn percent(&self) -> Option<f64> {
        let busy = machine_busy()?.saturating_sub(self.busy?);
        let own = process_cpu().saturating_sub(self.own);
        let mut excluded = Duration::ZERO;
        for (&pid, before) in self.pids.iter().zip(&self.before) {
            if let Some(before) = before {
                excluded += pid_cpu(pid)?.saturating_sub(*before);
            }
        }
        let wall = self.wall.elapsed().as_secs_f64();
        let foreign = busy.as_secs_f64() - own.as_secs_f64() - excluded.as_secs_f64();
        (wall > 0.0).then(|| (foreign / wall * 100.0).max(0.0))
    }
}
