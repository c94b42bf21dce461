//! What a handler's answer ([`Action`]) does, defined once: the TCP loop
//! (`on_connect`, `on_message`, a close asked from another thread) and the
//! worker threads of thread-per-connection mode all turn an `Action` into
//! an [`Effect`] here, so the answers cannot come to mean different things
//! on different paths.

use super::control::CloseMode;
use super::{Action, CloseReason};

/// What happens to the connection (and the server) after a callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Nothing: the connection stays.
    Keep,
    /// Close the connection with `reason`, after flushing or at once.
    Close(CloseReason, CloseMode),
    /// Stop the whole server gracefully; the connection stays until then.
    Stop,
}

impl Effect {
    /// A failure (handler, decoder, memory budget): close at once, reason `Error`.
    pub(crate) const ABORT: Effect = Effect::Close(CloseReason::Error, CloseMode::Now);
}

impl Action {
    /// The one mapping from a handler's answer to its effect.
    pub(crate) fn effect(self) -> Effect {
        match self {
            Action::Continue => Effect::Keep,
            Action::Close => Effect::Close(CloseReason::Handler, CloseMode::Flush),
            Action::Abort => Effect::ABORT,
            Action::Stop => Effect::Stop,
        }
    }
}
