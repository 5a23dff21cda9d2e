//! Graceful shutdown: in-flight calls finish, every usage row is written.

use std::time::Duration;

use futures_util::StreamExt;

use crate::common::{chat_stream, TestGateway};

#[tokio::test]
async fn shutdown_lets_an_in_flight_stream_finish_and_writes_its_row() {
    let mut gw = TestGateway::start().await;
    let response = gw
        .post(
            "/v1/chat/completions",
            chat_stream("slow [[mock:chunk-delay=100]]"),
        )
        .await;
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    assert!(!first.is_empty());

    let running = gw.running.take().unwrap();
    let addr = running.addr;
    running.stop();
    let waiting = tokio::spawn(running.wait());

    // New connections are refused while the stream goes on.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting after stop"
    );

    let mut rest = Vec::new();
    while let Some(piece) = stream.next().await {
        rest.extend_from_slice(&piece.unwrap());
    }
    assert!(String::from_utf8_lossy(&rest).ends_with("data: [DONE]\n\n"));
    tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap();
    let rows = gw.usage_rows().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, 200);
    assert!(rows[0].completion_tokens > 0);
}

#[tokio::test]
async fn a_client_that_hangs_up_mid_stream_still_leaves_a_row() {
    let mut gw = TestGateway::start().await;
    let response = gw
        .post(
            "/v1/chat/completions",
            chat_stream("slow [[mock:chunk-delay=200]]"),
        )
        .await;
    let mut stream = response.bytes_stream();
    stream.next().await.unwrap().unwrap();
    drop(stream);
    let rows = gw.wait_for_rows(1).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, 499);
    assert_eq!(rows[0].error_type.as_deref(), Some("client_closed"));
    gw.stop().await;
}
