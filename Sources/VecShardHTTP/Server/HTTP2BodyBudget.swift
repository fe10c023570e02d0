/// Flow control of request bodies on one HTTP/2 connection, as a state machine: the handler
/// reports what it received and released, and is told how many bytes of connection window to
/// give back (`nghttp2_session_consume_connection`). nghttp2's automatic WINDOW_UPDATE is off,
/// so the peer can only send what this grants.
///
/// Invariant (bytes): `committed = held + window the peer may still use`; a grant is made only
/// while `committed` stays within `connectionLimit`, and only from what the server-wide budget
/// (`ServerLoad.committedBodyBytes`, shared by every connection) leaves within `globalLimit`. So
/// one connection never holds more than `connectionLimit` bytes of bodies, and all together (held
/// plus outstanding window) never more than `globalLimit`, apart from the 65,535 bytes of window
/// every connection has by protocol. The window starts moderate (`window`) and grows, doubling
/// whenever the peer has used half of it, up to `maxWindow`: an idle connection commits little,
/// one large upload still gets a full-speed window. Stream windows are given back at once: the
/// connection window is the one that bounds.
struct HTTP2BodyBudget {
    let connectionLimit: Int
    let globalLimit: Int
    let maxWindow: Int
    /// Body bytes this connection holds (received, not yet handed to a handler or dropped).
    private(set) var held = 0
    /// `held` plus the window the peer may still use (what nghttp2 has not been told of yet counts
    /// as used: the bound is conservative). Also what this connection has committed server-wide.
    private(set) var committed: Int
    /// Bytes received and held whose connection window has not been given back
    /// (`peerWindow + withheld == window`).
    private(set) var withheld = 0
    /// The window the peer has when nothing is withheld: nghttp2's local connection window
    /// (grows up to `maxWindow`, never shrinks).
    private(set) var window: Int
    private var usedSinceGrowth = 0

    /// The protocol's initial connection window (RFC 9113 section 6.9.2): the peer has it before
    /// any SETTINGS or WINDOW_UPDATE, so it is committed whatever the server-wide budget says.
    static let protocolWindow = 65_535

    /// - Parameters:
    ///   - window: the connection window wanted at the start (at most `connectionLimit`); what
    ///     exceeds 65,535 is committed only as far as the server-wide budget allows: advertise
    ///     `committed` afterwards.
    ///   - maxWindow: how far the window may grow (default: it does not).
    init(connectionLimit: Int, globalLimit: Int, window: Int, maxWindow: Int? = nil, load: ServerLoad) {
        self.connectionLimit = connectionLimit
        self.globalLimit = globalLimit
        let floor = min(window, Self.protocolWindow)
        load.commit(floor)
        let start = floor + load.reserve(min(window, connectionLimit) - floor, limit: globalLimit)
        self.committed = start
        self.window = start
        self.maxWindow = max(start, min(maxWindow ?? window, connectionLimit))
    }

    /// The connection window the peer may still use.
    var peerWindow: Int { committed - held }

    /// `bytes` of DATA arrived. Kept bytes are held until `released`; discarded ones (a stream
    /// answered early, or gone) give their window straight back. Returns the connection window
    /// to give back now.
    mutating func received(_ bytes: Int, kept: Bool, load: ServerLoad) -> Int {
        guard kept else { return bytes }
        held += bytes
        withheld += bytes
        load.addBuffered(bytes)
        usedSinceGrowth += bytes
        if window < maxWindow && usedSinceGrowth >= window / 2 {
            // The peer uses its window: double it, as far as both budgets allow. The handler
            // advertises the new `window` (nghttp2_session_set_local_window_size).
            let extra = load.reserve(min(window, maxWindow - window, connectionLimit - committed), limit: globalLimit)
            window += extra
            committed += extra
            usedSinceGrowth = 0
        }
        return grant(load: load)
    }

    /// Held bytes were handed to a handler or dropped (stream reset, connection closed). With
    /// `regrant` false (no body in progress on the connection), withheld window is not given back
    /// now but when a body is next expected (`grant`): an idle connection does not take back from
    /// the server-wide budget what throttled connections wait for.
    mutating func released(_ bytes: Int, load: ServerLoad, regrant: Bool = true) -> Int {
        guard bytes > 0 else { return 0 }
        held -= bytes
        committed -= bytes
        load.addBuffered(-bytes)
        load.commit(-bytes)
        return regrant ? grant(load: load) : 0
    }

    /// Gives back as much withheld window as the budgets allow (also called from the connection's
    /// timer while throttled by the global budget, which other connections free).
    mutating func grant(load: ServerLoad) -> Int {
        guard withheld > 0 else { return 0 }
        let room = min(withheld, connectionLimit - committed)
        guard room > 0 else { return 0 }
        let n = load.reserve(room, limit: globalLimit)
        withheld -= n
        committed += n
        return n
    }

    /// Window is withheld although this connection's budget has room: only the server-wide
    /// budget, which other connections free, stands in the way (worth retrying soon).
    var throttledByGlobalBudget: Bool { withheld > 0 && committed < connectionLimit }

    /// The peer has no window left because the server withholds it: its bodies cannot progress
    /// until the budget frees (their body clock stops meanwhile).
    var throttled: Bool { withheld > 0 && committed == held }

    /// The connection is going away: every held byte is dropped and nothing stays committed.
    mutating func releaseAll(load: ServerLoad) {
        if held > 0 { load.addBuffered(-held) }
        if committed > 0 { load.commit(-committed) }
        held = 0
        withheld = 0
        committed = 0
    }
}
