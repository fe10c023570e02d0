import CNGHTTP2
import NIOCore

/// Request bodies against the budgets (`HTTP2BodyBudget`): what a stream holds is released when
/// it is handed over or dropped, the peer's connection window follows the budget, and a body
/// that cannot fit is refused with REFUSED_STREAM.
extension HTTP2ServerHandler {
    /// `bytes` of the connection window may be given back: done at the next flush (`syncWindow`).
    @inline(__always)
    func giveBackWindow(_ bytes: Int) {
        if bytes > 0 { windowOwed = true }
    }

    /// Brings the peer's connection window up to the budget's `peerWindow` with one WINDOW_UPDATE.
    /// nghttp2's own accounting (`nghttp2_session_consume_connection`) is not used: it sends a
    /// WINDOW_UPDATE only once half its local window was consumed and only when told of more, so
    /// window given back below that threshold could stay unsent while the budget waits for the
    /// peer. Reading nghttp2's view of the peer's window also counts what it gave back itself
    /// (DATA of closed streams). Sent once at least half of the window is owed (a peer with no
    /// window left is always owed all of it), so that an upload is not answered with a
    /// WINDOW_UPDATE per read.
    func syncWindow() {
        guard windowOwed, let session else { return }
        windowOwed = false
        let owed = budget.peerWindow - Int(nghttp2_session_get_local_window_size(session.raw))
        if owed > 0 && 2 * owed >= budget.peerWindow {
            _ = nghttp2_submit_window_update(session.raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, Int32(owed))
        }
    }

    /// The stream's body is no longer kept: its held bytes leave the budget.
    func stopReceiving(_ stream: HTTP2ServerStream) {
        endReceiving(stream)
        if let body = stream.body {
            stream.body = nil
            release(body)
        }
    }

    /// `body`, held until now, leaves the budgets (handed to a handler or dropped).
    @inline(__always)
    func release(_ body: ByteBuffer) {
        giveBackWindow(budget.released(body.readableBytes, load: load, regrant: bodiesInProgress > 0))
    }

    /// The stream's body is no longer expected (complete, answered, or reset).
    @inline(__always)
    func endReceiving(_ stream: HTTP2ServerStream) {
        guard stream.receivingBody else { return }
        stream.receivingBody = false
        bodiesInProgress -= 1
        declaredInProgress -= stream.contentLength ?? 0
    }

    /// RST_STREAM(REFUSED_STREAM) before the request is processed: its held bytes are released
    /// and the client may safely retry it (RFC 9113 section 8.7).
    func refuse(_ stream: HTTP2ServerStream) {
        stopReceiving(stream)
        stream.responseSubmitted = true // nothing more is answered on it
        session?.resetStream(stream.id, code: NGHTTP2_REFUSED_STREAM.rawValue)
    }
}
