import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOExtras
import NIOPosix

/// Limits every connection enforces; each is refused cleanly for the one request or stream that
/// breaks it while other streams and connections keep working.
public struct HTTPServerLimits: Sendable {
    /// HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS; streams over it are refused with RST_STREAM.
    public var maxConcurrentStreams: UInt32 = 256
    /// Request header block, bytes (names + values + 32 per field, as RFC 9113 counts); over it: 431.
    public var maxHeaderListBytes = 16 * 1024
    /// Request body, bytes; over it: 413 (and RST_STREAM(NO_ERROR) on HTTP/2).
    public var maxBodyBytes = 64 * 1024 * 1024
    /// HTTP/2 per-stream receive window (SETTINGS_INITIAL_WINDOW_SIZE), bytes: large enough that a
    /// multi-megabyte request does not stall every 64 KiB.
    public var streamWindowBytes = 8 * 1024 * 1024
    /// HTTP/2 connection receive window, bytes: the most it grows to (within the body budgets).
    public var connectionWindowBytes = 64 * 1024 * 1024
    /// HTTP/2 connection receive window at the start, bytes (at least 65,535): an idle connection
    /// commits only this much of the server-wide body budget; the window doubles whenever the
    /// peer has used half of it, up to `connectionWindowBytes`, as both budgets allow.
    public var initialConnectionWindowBytes = 1024 * 1024
    /// HTTP/2 SETTINGS_MAX_FRAME_SIZE we accept, bytes (16 KiB to 16 MiB - 1).
    public var maxFrameBytes = 1024 * 1024
    /// A streamed response producer waits while this many bytes are queued for the peer.
    public var streamingHighWatermark = 1024 * 1024
    /// Request-body bytes one connection may hold in memory (bodies received but not yet handed
    /// to a handler). HTTP/2: the connection window is given back (WINDOW_UPDATE) only while the
    /// held bytes plus the window the peer may still use fit, so an uploader over it is throttled
    /// by flow control. At least `maxBodyBytes` (a smaller value is raised to it).
    public var maxConnectionBodyBytes = 64 * 1024 * 1024
    /// Request-body bytes all connections together may hold; over it no connection gets window
    /// back (HTTP/2) or is read from (HTTP/1.1) until bodies are handed over or dropped.
    public var maxBufferedBodyBytes = 512 * 1024 * 1024
    /// From accept to the first request's complete header block (covers the TLS handshake and
    /// the HTTP/2 preface), and from a request's first header byte to its last; over it the
    /// connection is closed (GOAWAY on HTTP/2).
    public var headerTimeout: TimeAmount = .seconds(10)
    /// A request body that makes no progress (no byte) for this long: 408 `request_timeout`
    /// (HTTP/2: on that stream, then RST_STREAM; HTTP/1.1: then the connection closes). The clock
    /// stops while the server itself throttles the body (HTTP/2: no connection window left
    /// because the budgets withhold it; HTTP/1.1: not read from, the global budget being full).
    public var bodyTimeout: TimeAmount = .seconds(30)
    /// After `bodyTimeout` of body time (counted as above), a body must have averaged at least
    /// this rate, bytes per second, or it is answered 408 too: so it completes within
    /// max(`bodyTimeout`, bytes / rate) of the time it could be sent.
    public var minimumBodyBytesPerSecond = 64 * 1024
    /// A keep-alive connection with no request open for this long is closed (GOAWAY on HTTP/2).
    public var idleTimeout: TimeAmount = .seconds(120)
    /// Open connections; a connection accepted over it is closed at once (counted in
    /// `HTTPServerStats.refusedConnections`).
    public var maxConnections = 4096
    /// Requests whose handler runs at one time, over all connections (constant and inline routes
    /// such as probes are not counted); over it: 503 `overloaded` with `retry-after`.
    public var maxConcurrentRequests = 256

    public init() {}

    /// The connection body budget actually applied: never below one maximal body.
    var effectiveConnectionBodyBytes: Int { max(maxConnectionBodyBytes, maxBodyBytes) }

    /// The capacity a request body's buffer starts with: what the first bytes need, or what was
    /// declared, but never more than `initialBodyCapacity` (the buffer grows as bytes arrive), so
    /// that declared lengths alone allocate little.
    func initialBodyCapacity(declared: Int?, received: Int) -> Int {
        min(max(declared ?? received, received), maxBodyBytes, max(received, Self.initialBodyCapacity))
    }

    static let initialBodyCapacity = 1024 * 1024
}

public struct HTTPServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var limits = HTTPServerLimits()
    /// TLS on OpenSSL (ALPN h2, http/1.1) when set; plain TCP otherwise.
    public var tls: TLSContext?
    public var backlog: Int32 = 1024

    public init(host: String = "127.0.0.1", port: Int = 8080, tls: TLSContext? = nil) {
        self.host = host
        self.port = port
        self.tls = tls
    }
}

/// HTTP/2 (nghttp2) and HTTP/1.1 (NIO) on one port, optionally under TLS (OpenSSL).
/// `shutdown` stops accepting, lets in-flight requests finish (HTTP/2 connections get GOAWAY), then
/// closes every connection.
public final class HTTPServer: Sendable {
    private struct State {
        var channel: (any Channel)?
        var quiesce: ServerQuiescingHelper?
        var localAddress: SocketAddress?
    }

    public let configuration: HTTPServerConfiguration
    /// Shared counters and budgets of every connection (`load.stats` for metrics).
    public let load: ServerLoad
    private let router: Router
    private let group: any EventLoopGroup
    private let logger: Logger
    private let state = NIOLockedValueBox(State())

    public init(configuration: HTTPServerConfiguration, router: Router, group: any EventLoopGroup, logger: Logger = Logger(label: "vecshard.http"),
                load: ServerLoad = ServerLoad()) {
        self.configuration = configuration
        self.load = load
        self.router = router
        self.group = group
        self.logger = logger
    }

    /// The port actually bound (differs from the configured one when that was 0).
    public var port: Int { state.withLockedValue { $0.localAddress?.port } ?? configuration.port }

    /// Binds and starts accepting connections.
    public func start() async throws {
        let quiesce = ServerQuiescingHelper(group: group)
        let router = self.router
        let limits = configuration.limits
        let tls = configuration.tls
        let load = self.load
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: configuration.backlog)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiesce.makeServerChannelHandler(channel: channel))
                }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let open = load.openConnections.wrappingIncrementThenLoad(ordering: .relaxed)
                    channel.closeFuture.whenComplete { _ in load.openConnections.wrappingDecrement(ordering: .relaxed) }
                    if open > limits.maxConnections {
                        // NIO closes a channel whose initializer fails, before reading from it.
                        load.refusedConnections.wrappingIncrement(ordering: .relaxed)
                        throw ConnectionLimitReached(limit: limits.maxConnections)
                    }
                    let sync = channel.pipeline.syncOperations
                    if let tls { try sync.addHandler(TLSHandler(context: tls)) }
                    try sync.addHandler(ProtocolDetector(router: router, limits: limits, load: load))
                }
            }
            .bind(host: configuration.host, port: configuration.port)
            .get()
        state.withLockedValue {
            $0.channel = channel
            $0.quiesce = quiesce
            $0.localAddress = channel.localAddress
        }
        logger.info("listening", metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "?")",
                                            "tls": "\(tls != nil)"])
    }

    /// Graceful stop: closes the listening socket, asks every connection to finish its in-flight
    /// requests (GOAWAY on HTTP/2, `connection: close` on HTTP/1.1), waits for them up to
    /// `gracePeriod`, then closes what is left.
    public func shutdown(gracePeriod: TimeAmount = .seconds(10)) async {
        guard let (quiesce, channel) = state.withLockedValue({ s -> (ServerQuiescingHelper, any Channel)? in
            guard let q = s.quiesce, let c = s.channel else { return nil }
            s.quiesce = nil
            return (q, c)
        }) else { return }
        let promise = channel.eventLoop.makePromise(of: Void.self)
        quiesce.initiateShutdown(promise: promise)
        let drained: Bool = await withCheckedContinuation { continuation in
            let resumed = NIOLockedValueBox(false)
            let finish: @Sendable (Bool) -> Void = { value in
                if resumed.withLockedValue({ done in defer { done = true }; return !done }) {
                    continuation.resume(returning: value)
                }
            }
            promise.futureResult.whenComplete { finish((try? $0.get()) != nil) }
            channel.eventLoop.scheduleTask(in: gracePeriod) { finish(false) }
        }
        if !drained {
            logger.warning("connections still open after the grace period; they close with the event loops")
        }
        logger.info("stopped")
    }
}

/// A connection accepted while `maxConnections` were open (closed at once, nothing sent).
struct ConnectionLimitReached: Error {
    var limit: Int
}
