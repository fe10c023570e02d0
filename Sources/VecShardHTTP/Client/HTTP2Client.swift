import Atomics
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// An HTTP/2 client on nghttp2: per peer a small pool of connections (default one), many
/// concurrent streams on each, per-request deadlines, cancellation that resets the stream, and a
/// fresh connection after a failure or GOAWAY. Safe to share between tasks.
public final class HTTP2Client: Sendable {
    public struct Configuration: Sendable {
        public var connectTimeout: TimeAmount = .seconds(2)
        /// Connections per peer; a new one opens when every open one carries `streamsPerConnection`.
        public var connectionsPerPeer = 1
        public var streamsPerConnection = 100
        /// TLS on OpenSSL (ALPN h2) when set.
        public var tls: TLSContext?
        /// Receive windows and frame size for responses.
        public var limits = HTTPServerLimits()

        public init() {}
    }

    private final class PeerConnections: @unchecked Sendable { // guarded by `pools`' lock
        var connections: [HTTP2ClientConnection] = []
        var connecting: EventLoopFuture<HTTP2ClientConnection>?
    }

    public let configuration: Configuration
    private let group: any EventLoopGroup
    private let pools = NIOLockedValueBox<[Peer: PeerConnections]>([:])
    private let isShutdown = ManagedAtomic<Bool>(false)

    public init(group: any EventLoopGroup, configuration: Configuration = Configuration()) {
        self.group = group
        self.configuration = configuration
    }

    /// Sends one request and waits for the complete response. Throws `HTTPClientError`.
    /// A stream the peer refused without processing it (REFUSED_STREAM, GOAWAY) is retried, up to
    /// `maxRefusedRetries` times, within the same deadline; from the second retry on after a
    /// growing pause (a server refuses a body its budget cannot hold while other bodies are under
    /// way: they need a moment to complete).
    public func execute(_ request: ClientRequest, to peer: Peer, timeout: TimeAmount) async throws -> ClientResponse {
        let deadline = NIODeadline.now() + timeout
        var attempt = 0
        while true {
            let connection = try await connection(to: peer)
            do {
                return try await connection.execute(request, deadline: deadline)
            } catch HTTPClientError.http2(.refusedStream) where attempt < Self.maxRefusedRetries && NIODeadline.now() < deadline {
                attempt += 1
                if attempt > 1 {
                    let pause = min(Self.refusedRetryPause.nanoseconds << (attempt - 2), (deadline - NIODeadline.now()).nanoseconds)
                    if pause > 0 { try? await Task.sleep(nanoseconds: UInt64(pause)) }
                }
            }
        }
    }

    /// Sends one request whose response is a long-lived stream (a gRPC server-streaming call such
    /// as etcd's Watch): `onData` receives each DATA chunk as it arrives, on the connection's event
    /// loop (keep it short), and the call returns the status, headers and trailers once the stream
    /// has ended (its `body` is empty). No deadline: it ends when the peer ends it, the
    /// connection fails, or the calling task is cancelled (the stream is reset).
    public func stream(_ request: ClientRequest, to peer: Peer,
                       onData: @escaping @Sendable (ByteBuffer) -> Void) async throws -> ClientResponse {
        try await connection(to: peer).execute(request, deadline: .distantFuture, onData: onData)
    }

    static let maxRefusedRetries = 8
    /// The pause before the second retry of a refused stream; it doubles for each further one
    /// (20 ms ... 1.3 s: 2.5 s in all).
    static let refusedRetryPause: TimeAmount = .milliseconds(20)

    /// Closes every connection; requests in flight fail.
    public func shutdown() async {
        isShutdown.store(true, ordering: .relaxed)
        let all = pools.withLockedValue { pools -> [HTTP2ClientConnection] in
            defer { pools.removeAll() }
            return pools.values.flatMap(\.connections)
        }
        for connection in all { try? await connection.channel.close() }
    }

    private enum Pick {
        case ready(HTTP2ClientConnection)
        case wait(EventLoopFuture<HTTP2ClientConnection>)
        case connect(EventLoopPromise<HTTP2ClientConnection>)
    }

    func connection(to peer: Peer) async throws -> HTTP2ClientConnection {
        if isShutdown.load(ordering: .relaxed) { throw HTTPClientError.shutdown }
        let limit = configuration.streamsPerConnection
        let maxConnections = configuration.connectionsPerPeer
        let pick = pools.withLockedValue { pools -> Pick in
            let peerPool: PeerConnections
            if let existing = pools[peer] { peerPool = existing } else { peerPool = PeerConnections(); pools[peer] = peerPool }
            peerPool.connections.removeAll { !$0.isUsable }
            let best = peerPool.connections.min { $0.load < $1.load }
            if let best, best.load < limit || peerPool.connections.count >= maxConnections { return .ready(best) }
            if let connecting = peerPool.connecting { return best.map(Pick.ready) ?? .wait(connecting) }
            let promise = group.next().makePromise(of: HTTP2ClientConnection.self)
            peerPool.connecting = promise.futureResult
            return best.map(Pick.ready) ?? .connect(promise)
        }
        switch pick {
        case .ready(let connection):
            return connection
        case .wait(let future):
            return try await future.get()
        case .connect(let promise):
            connect(to: peer).whenComplete { result in
                self.pools.withLockedValue { pools in
                    let peerPool = pools[peer]
                    peerPool?.connecting = nil
                    if case .success(let connection) = result { peerPool?.connections.append(connection) }
                }
                promise.completeWith(result)
            }
            return try await promise.futureResult.get()
        }
    }

    private func connect(to peer: Peer) -> EventLoopFuture<HTTP2ClientConnection> {
        let tls = configuration.tls
        let limits = configuration.limits
        let outstanding = ManagedAtomic<Int>(0)
        let draining = ManagedAtomic<Bool>(false)
        let authority = peer.description
        return ClientBootstrap(group: group)
            .connectTimeout(configuration.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let tls { try sync.addHandler(TLSHandler(context: tls, serverName: peer.host)) }
                    try sync.addHandler(HTTP2ClientHandler(limits: limits, authority: authority, scheme: tls == nil ? "http" : "https",
                                                           outstanding: outstanding, draining: draining))
                }
            }
            .connect(host: peer.host, port: peer.port)
            .flatMapErrorThrowing { error in throw HTTPClientError.connectFailed(peer, "\(error)") }
            .flatMap { channel in
                channel.pipeline.handler(type: HTTP2ClientHandler.self).map { handler in
                    HTTP2ClientConnection(channel: channel, handler: NIOLoopBound(handler, eventLoop: channel.eventLoop),
                                          outstanding: outstanding, draining: draining)
                }
            }
    }
}

/// One pooled connection. Requests submitted from other threads are queued and handed to the
/// event loop in batches: one wake-up per event-loop tick rather than one per request.
final class HTTP2ClientConnection: Sendable {
    private struct Submission: Sendable {
        var request: ClientRequest
        var requestID: UInt64
        var deadline: NIODeadline
        var continuation: UnsafeContinuation<ClientResponse, any Error>
        var onData: (@Sendable (ByteBuffer) -> Void)?
    }

    private struct Queue {
        var submissions: [Submission] = []
        var drainScheduled = false
    }

    let channel: any Channel
    private let handler: NIOLoopBound<HTTP2ClientHandler>
    private let outstanding: ManagedAtomic<Int>
    private let draining: ManagedAtomic<Bool>
    private let nextRequestID = ManagedAtomic<UInt64>(1)
    private let queue = NIOLockedValueBox(Queue())

    init(channel: any Channel, handler: NIOLoopBound<HTTP2ClientHandler>, outstanding: ManagedAtomic<Int>, draining: ManagedAtomic<Bool>) {
        self.channel = channel
        self.handler = handler
        self.outstanding = outstanding
        self.draining = draining
    }

    var load: Int { outstanding.load(ordering: .relaxed) }
    var isUsable: Bool { channel.isActive && !draining.load(ordering: .relaxed) }

    func execute(_ request: ClientRequest, deadline: NIODeadline, onData: (@Sendable (ByteBuffer) -> Void)? = nil) async throws -> ClientResponse {
        let requestID = nextRequestID.loadThenWrappingIncrement(ordering: .relaxed)
        let handler = self.handler
        return try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<ClientResponse, any Error>) in
                let submission = Submission(request: request, requestID: requestID, deadline: deadline, continuation: continuation,
                                            onData: onData)
                if handler.eventLoop.inEventLoop {
                    Self.submit(submission, to: handler.value)
                    return
                }
                let schedule = queue.withLockedValue { queue -> Bool in
                    queue.submissions.append(submission)
                    defer { queue.drainScheduled = true }
                    return !queue.drainScheduled
                }
                if schedule { handler.eventLoop.execute { self.drainQueue() } }
            }
        } onCancel: {
            handler.eventLoop.execute { handler.value.abandon(requestID: requestID, with: .cancelled) }
        }
    }

    private func drainQueue() {
        let submissions = queue.withLockedValue { queue -> [Submission] in
            queue.drainScheduled = false
            defer { queue.submissions.removeAll(keepingCapacity: true) }
            return queue.submissions
        }
        let handler = self.handler.value
        for submission in submissions { Self.submit(submission, to: handler) }
    }

    private static func submit(_ submission: Submission, to handler: HTTP2ClientHandler) {
        handler.submit(submission.request, requestID: submission.requestID, deadline: submission.deadline,
                       completion: .continuation(submission.continuation), onData: submission.onData)
    }
}
