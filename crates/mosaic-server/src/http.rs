//! Plain HTTP on the server's port and on the metrics address: `GET /`
//! answers the status JSON, `GET /metrics` the metrics in the Prometheus
//! text format.
//!
//! When `metrics_listen` is set, `/metrics` is answered there only (a plain
//! listener that answers nothing else), so that it can be kept private.

use std::sync::Arc;

use mosaic_net::{HttpRequest, Incoming};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, warn};

use crate::metrics::{CONTENT_TYPE, HttpEndpoint};
use crate::now;
use crate::server::Shared;

const JSON: &str = "application/json";

/// Answers a plain HTTP request that came to the server's port, and closes
/// its connection.
pub(crate) async fn answer(shared: &Shared, request: HttpRequest) {
    let banned = shared.policy.ip_ban(request.peer().ip(), now()).is_some();
    let endpoint = endpoint(&request.path);
    let (status, content_type, body) = if banned {
        (403, JSON, b"{\"error\":\"banned\"}".to_vec())
    } else if request.method != "GET" {
        (405, JSON, b"{\"error\":\"method not allowed\"}".to_vec())
    } else {
        match endpoint {
            HttpEndpoint::Status => {
                let status = shared.status();
                (200, JSON, serde_json::to_vec(&status).unwrap_or_default())
            }
            HttpEndpoint::Metrics if shared.config().metrics_listen.is_none() => {
                (200, CONTENT_TYPE, shared.metrics_text().into_bytes())
            }
            _ => (404, JSON, b"{\"error\":\"not found\"}".to_vec()),
        }
    };
    shared.metrics.http_request(endpoint, status);
    let _ = request.respond(status, content_type, &body).await;
}

/// Which endpoint a request path names (the query string aside).
fn endpoint(path: &str) -> HttpEndpoint {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    match path {
        "/" | "/status.json" => HttpEndpoint::Status,
        "/metrics" => HttpEndpoint::Metrics,
        _ => HttpEndpoint::Other,
    }
}

/// Serves `GET /metrics` on `listener` (the `metrics_listen` address) until
/// `shutdown` turns true. Everything else there gets 404, WebSocket
/// upgrades included.
pub(crate) async fn serve_metrics(
    shared: Arc<Shared>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut requests = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let shared = shared.clone();
                    requests.spawn(async move {
                        match mosaic_net::accept(tcp, peer, None, &shared.accept_config()).await {
                            Ok(Incoming::Http(request)) => answer_metrics(&shared, request).await,
                            Ok(Incoming::Upgrade(upgrade)) => {
                                shared.metrics.http_request(HttpEndpoint::Other, 404);
                                let _ = upgrade.refuse(404, "only /metrics is served here").await;
                            }
                            Err(e) => debug!(error = %e, "metrics request refused"),
                        }
                    });
                }
                Err(e) => {
                    warn!(error = %e, "accept failed on the metrics address");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = requests.join_next(), if !requests.is_empty() => {}
        }
    }
    requests.abort_all();
}

async fn answer_metrics(shared: &Shared, request: HttpRequest) {
    let endpoint = endpoint(&request.path);
    let (status, content_type, body) = match (request.method.as_str(), endpoint) {
        ("GET", HttpEndpoint::Metrics) => (200, CONTENT_TYPE, shared.metrics_text().into_bytes()),
        ("GET", _) => (404, JSON, b"{\"error\":\"not found\"}".to_vec()),
        _ => (405, JSON, b"{\"error\":\"method not allowed\"}".to_vec()),
    };
    shared.metrics.http_request(endpoint, status);
    let _ = request.respond(status, content_type, &body).await;
}
