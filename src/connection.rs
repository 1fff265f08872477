//! What a request handler may ask of the connection it is answered on,
//! given to every request as an extension by the server's listener: a
//! handler whose long response (an event stream) its client stopped
//! reading drops the connection, which no timeout would otherwise end.

use std::sync::Arc;

/// Drops the connection a request arrived on.
#[derive(Clone)]
pub struct ConnectionControl(Arc<dyn Fn() + Send + Sync>);

impl ConnectionControl {
    /// `drop_stalled` drops the connection (the listener's way).
    pub fn new(drop_stalled: impl Fn() + Send + Sync + 'static) -> Self {
        ConnectionControl(Arc::new(drop_stalled))
    }

    /// Drops the connection now: its client stopped reading the response.
    pub fn drop_stalled(&self) {
        (self.0)();
    }
}

impl std::fmt::Debug for ConnectionControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnectionControl")
    }
}
