//! Long-polling over one keep-alive connection: a GET that parks and is answered later leaves
//! the connection clean for the next request. (It did not: the watcher that notices a client
//! giving up on a parked GET was dropped mid-read when the answer came first, and left zero
//! bytes in the connection's buffer, so the next request on the connection got 400 "invalid
//! request head" — seen as a rare failure of the Engine.IO polling echo test under load.)

use anyhow::ensure;
use livechat_tests::{get_request, idle_session, polling_path, post, HttpConn, Server};

#[test]
fn a_connection_serves_requests_after_each_parked_get() -> anyhow::Result<()> {
    for executors in ["1", "2"] {
        let server = Server::conformance(executors, &[])?;
        let addr = server.addr();
        let sid = idle_session(addr)?;
        let path = polling_path(&sid);
        let mut conn = HttpConn::connect(addr)?;
        for i in 0..20 {
            // The GET parks (the session's queue is empty) until the echo below wakes it.
            conn.send(&get_request(addr, &path))?;
            let body = format!(r#"42["message","m{i}"]"#);
            let posted = post(addr, &path, &body)?;
            ensure!(posted.status == 200, "POST {i}: {}", posted.status);
            let mut got = conn.read_response()?;
            // The echo may take a second GET on the same connection (the first one may have
            // been answered before the echo was queued).
            while got.status == 200 && !got.text().contains(&format!("\"m{i}\"")) {
                got = conn.request(&get_request(addr, &path))?;
            }
            ensure!(
                got.status == 200,
                "--executors {executors}, round {i}: {} {}\n{}",
                got.status,
                got.text(),
                server.stderr_log()
            );
        }
    }
    Ok(())
}
