/// Flow control of request bodies on one HTTP/2 connection, as a state machine: the handler
/// reports what it received and released, and is told how many bytes of connection window to
/// give back (`nghttp2_session_consume_connection`). nghttp2's automatic WINDOW_UPDATE is off,
/// so the peer can only send what this grants.
///
/// Invariant (bytes): `committed = held + window the peer may still use`, and a grant is made
/// only while `committed` stays within `connectionLimit` and the server-wide held bytes within
/// `globalLimit`. So one connection never holds more than `connectionLimit` bytes of bodies, and
/// an uploader over a budget is throttled by its window, not by memory. Stream windows are given
/// back at once: the connection window is the one that bounds.
struct HTTP2BodyBudget {
    let connectionLimit: Int
    let globalLimit: Int
    /// Body bytes this connection holds (received, not yet handed to a handler or dropped).
    private(set) var held = 0
    /// `held` plus the window the peer may still use (what nghttp2 has not been told of yet counts
    /// as used: the bound is conservative).
    private(set) var committed: Int
    /// Bytes received and held whose connection window has not been given back.
    private(set) var withheld = 0

    /// - Parameter window: the connection window advertised at the start (at most `connectionLimit`).
    init(connectionLimit: Int, globalLimit: Int, window: Int) {
        self.connectionLimit = connectionLimit
        self.globalLimit = globalLimit
        self.committed = window
    }

    /// `bytes` of DATA arrived. Kept bytes are held until `released`; discarded ones (a stream
    /// answered early, or gone) give their window straight back. Returns the connection window
    /// to give back now.
    mutating func received(_ bytes: Int, kept: Bool, load: ServerLoad) -> Int {
        guard kept else { return bytes }
        held += bytes
        withheld += bytes
        load.addBuffered(bytes)
        return grant(load: load)
    }

    /// Held bytes were handed to a handler or dropped (stream reset, connection closed).
    mutating func released(_ bytes: Int, load: ServerLoad) -> Int {
        guard bytes > 0 else { return 0 }
        held -= bytes
        committed -= bytes
        load.addBuffered(-bytes)
        return grant(load: load)
    }

    /// Gives back as much withheld window as the budgets allow (also called from the connection's
    /// timer while throttled by the global budget, which other connections free).
    mutating func grant(load: ServerLoad) -> Int {
        guard withheld > 0 else { return 0 }
        let room = connectionLimit - committed
        guard room > 0, load.bufferedBodyBytes.load(ordering: .relaxed) < globalLimit else { return 0 }
        let n = min(withheld, room)
        withheld -= n
        committed += n
        return n
    }

    /// Window is withheld although this connection's budget has room: only the server-wide
    /// budget, which other connections free, stands in the way (worth retrying soon).
    var throttledByGlobalBudget: Bool { withheld > 0 && committed < connectionLimit }

    /// The connection is going away: every held byte is dropped.
    mutating func releaseAll(load: ServerLoad) {
        if held > 0 { load.addBuffered(-held) }
        held = 0
        withheld = 0
    }
}
