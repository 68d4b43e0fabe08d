//! `livechat check-config`: the settings checked as `serve` would check them, with nothing
//! started — exit 0 and a summary when they hold, exit 1 naming the bad key or value otherwise.

use std::process::{Command, Output};

use livechat_tests::livechat_binary;

/// `livechat check-config args...` with only `vars` in the environment (besides PATH).
fn check(vars: &[(&str, &str)], args: &[&str]) -> anyhow::Result<Output> {
    let mut cmd = Command::new(livechat_binary()?);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .arg("check-config")
        .args(args);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    Ok(cmd.output()?)
}

#[test]
fn good_settings_pass_and_bad_ones_are_named() -> anyhow::Result<()> {
    let ok = check(
        &[("LIVECHAT_CHAT_REDIS_URL", "redis://127.0.0.1:6379/0")],
        &[],
    )?;
    assert!(ok.status.success(), "{ok:?}");
    let said = String::from_utf8(ok.stdout)?;
    assert!(
        said.starts_with("configuration ok: backend Redis"),
        "{said}"
    );

    let typo = check(&[("LIVECHAT_CHAT_QUEUE_MAX_WIAT", "1s")], &[])?;
    assert_eq!(typo.status.code(), Some(1));
    assert!(String::from_utf8(typo.stderr)?.contains("max-wiat"));

    let public = check(&[], &["--listen", "0.0.0.0:8080"])?;
    assert_eq!(public.status.code(), Some(1));
    assert!(String::from_utf8(public.stderr)?.contains("allow-insecure"));

    let tight = check(
        &[
            ("LIVECHAT_CHAT_SHUTDOWN_DRAIN_DELAY", "10s"),
            ("LIVECHAT_CHAT_SHUTDOWN_TIMEOUT", "10s"),
        ],
        &[],
    )?;
    assert_eq!(tight.status.code(), Some(1));
    assert!(String::from_utf8(tight.stderr)?.contains("chat.shutdown.timeout"));
    Ok(())
}
