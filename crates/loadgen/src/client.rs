//! One HTTP/1.1 keep-alive connection per load task, on `hyper::client::conn::http1`.

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rust_decimal::Decimal;
use tokio::net::TcpStream;

use crate::LoadError;

/// Where the requests go, with the header values every request repeats prepared once.
pub(crate) struct Target {
    pub addr: SocketAddr,
    host: HeaderValue,
    prefix: String,
    orders: Uri,
    auth: Option<HeaderValue>,
}

impl Target {
    /// `http://host[:port][/prefix]`; https is not supported (the gateway speaks plain HTTP and
    /// TLS would measure the loader's crypto rather than the trading path).
    pub async fn parse(url: &str, api_key: Option<&str>) -> Result<Target, LoadError> {
        let bad = |reason: &str| LoadError::Url {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| bad("only http:// URLs are supported"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(bad("no host"));
        }
        let has_port = match authority.rfind(':') {
            Some(i) => !authority[i..].contains(']'),
            None => false,
        };
        let host_port = if has_port {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let addr = crate::resolve(&host_port).await.map_err(|e| bad(&e))?;
        let host = HeaderValue::from_str(authority).map_err(|_| bad("invalid host"))?;
        let prefix = path.trim_end_matches('/').to_string();
        let orders = Uri::from_str(&format!("{prefix}/orders")).map_err(|_| bad("invalid path"))?;
        let auth = match api_key {
            Some(k) => Some(HeaderValue::from_str(&format!("Bearer {k}")).map_err(|_| {
                LoadError::InvalidOption("the API key is not a valid header value".into())
            })?),
            None => None,
        };
        Ok(Target {
            addr,
            host,
            prefix,
            orders,
            auth,
        })
    }

    /// `path_and_query` (starting with `/`) under the URL's prefix.
    pub fn uri(&self, path_and_query: &str) -> Result<Uri, LoadError> {
        Uri::from_str(&format!("{}{path_and_query}", self.prefix)).map_err(|_| {
            LoadError::InvalidOption(format!("{path_and_query:?} is not a valid request path"))
        })
    }

    fn request(&self, method: Method, uri: Uri, body: Bytes) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = method;
        *req.uri_mut() = uri;
        let h = req.headers_mut();
        h.insert(HOST, self.host.clone());
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(a) = &self.auth {
            h.insert(AUTHORIZATION, a.clone());
        }
        req
    }
}

/// What one request came to.
pub(crate) enum Exchange {
    Answer {
        status: StatusCode,
        body: Bytes,
    },
    /// No connection could be (re)established.
    ConnectFailed(String),
    /// The connection broke or the answer did not come in time.
    Failed(String),
}

pub(crate) struct Client {
    target: Arc<Target>,
    /// `None` after a failure: the next request reconnects.
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Client {
    pub async fn connect(target: Arc<Target>) -> Result<Client, String> {
        let sender = open(&target).await?;
        Ok(Client {
            target,
            sender: Some(sender),
        })
    }

    /// POST one order body to `/orders`.
    pub async fn exchange(&mut self, body: Bytes, timeout: Duration) -> Exchange {
        let uri = self.target.orders.clone();
        self.send(Method::POST, uri, body, timeout).await
    }

    /// A request without a body (`GET`, `DELETE`).
    pub async fn bodiless(&mut self, method: Method, uri: Uri, timeout: Duration) -> Exchange {
        self.send(method, uri, Bytes::new(), timeout).await
    }

    async fn send(&mut self, method: Method, uri: Uri, body: Bytes, timeout: Duration) -> Exchange {
        let mut sender = match self.sender.take() {
            Some(s) if !s.is_closed() => s,
            _ => match open(&self.target).await {
                Ok(s) => s,
                Err(e) => return Exchange::ConnectFailed(e),
            },
        };
        let req = self.target.request(method, uri, body);
        match tokio::time::timeout(timeout, round_trip(&mut sender, req)).await {
            Ok(Ok((status, body))) => {
                self.sender = Some(sender);
                Exchange::Answer { status, body }
            }
            // The connection is dropped with `sender`: after a failure its state is unknown.
            Ok(Err(e)) => Exchange::Failed(describe(&e)),
            Err(_) => Exchange::Failed(format!("no answer within {timeout:?}")),
        }
    }
}

async fn open(target: &Target) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = TcpStream::connect(target.addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    // Small request/response pairs: Nagle would add up to 40 ms per order.
    stream
        .set_nodelay(true)
        .map_err(|e| format!("TCP_NODELAY: {e}"))?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {}", describe(&e)))?;
    // The connection future does the I/O; its errors reach the caller through `send_request`.
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

async fn round_trip(
    sender: &mut SendRequest<Full<Bytes>>,
    req: Request<Full<Bytes>>,
) -> Result<(StatusCode, Bytes), hyper::Error> {
    sender.ready().await?;
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// An error and its causes on one line (hyper's own message is terse: "connection closed
/// before message completed" says more with the io error under it).
fn describe(e: &(dyn StdError + 'static)) -> String {
    let mut msg = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        cause = c.source();
    }
    msg
}

/// The current mid of `symbol`, from `GET /marketdata/{symbol}` (`quote.mid`, a decimal string).
pub(crate) async fn fetch_mid(
    target: &Arc<Target>,
    symbol: &str,
    timeout: Duration,
) -> Result<Decimal, LoadError> {
    let md = |m: String| LoadError::MarketData(m);
    let uri = Uri::from_str(&format!("{}/marketdata/{symbol}", target.prefix))
        .map_err(|_| LoadError::InvalidOption(format!("invalid --symbol {symbol:?}")))?;
    let mut client =
        Client::connect(target.clone())
            .await
            .map_err(|reason| LoadError::Connect {
                addr: target.addr.to_string(),
                reason,
            })?;
    let (status, body) = match client.send(Method::GET, uri, Bytes::new(), timeout).await {
        Exchange::Answer { status, body } => (status, body),
        Exchange::ConnectFailed(e) | Exchange::Failed(e) => return Err(md(e)),
    };
    if !status.is_success() {
        return Err(md(format!(
            "GET /marketdata/{symbol} answered {status}: {}",
            String::from_utf8_lossy(&body)
        )));
    }
    let doc: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| md(format!("not JSON: {e}")))?;
    let text = match &doc["quote"]["mid"] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => return Err(md(format!("{symbol} has no quote.mid yet: {doc}"))),
    };
    let mid = Decimal::from_str(&text).map_err(|e| md(format!("quote.mid {text:?}: {e}")))?;
    if mid <= Decimal::ZERO {
        return Err(md(format!("quote.mid is {mid}")));
    }
    Ok(mid)
}
