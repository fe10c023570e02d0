import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
import VecShardCluster
import VecShardHTTP
import VecShardRouting
import VecShardStorage

/// Settings of `vecshard serve`.
public struct ServiceConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    public var dataDirectory = "./data"
    public var tlsCertificateFile: String?
    public var tlsPrivateKeyFile: String?
    public var limits = HTTPServerLimits()
    /// How long in-flight requests may take to finish after SIGTERM before connections are closed.
    public var shutdownGracePeriod: TimeAmount = .seconds(25)
    /// Standalone mode: in-process shards (one group) under `dataDirectory/shards/`.
    public var shardCount = 4
    /// Storage knobs of every local shard (segment thresholds, WAL size).
    public var storage = StorageOptions()

    public init() {}
}

/// The vecshard service: the HTTP server and its routes. Runs under swift-service-lifecycle, which
/// turns SIGTERM/SIGINT into a graceful shutdown: `/readyz` turns 503, the listener closes,
/// in-flight requests finish, connections get GOAWAY or `connection: close`, then `run` returns.
public final class VecShardService: Service, Sendable {
    public let configuration: ServiceConfiguration
    public let metrics = ServiceMetrics()
    private let logger: Logger
    private let group: any EventLoopGroup
    private let server: HTTPServer
    private let state = NIOLockedValueBox(State())
    private let cluster = ClusterHandle()

    enum Phase: Sendable { case starting, ready, draining }

    private struct State {
        var phase = Phase.starting
        var listeners: [CheckedContinuation<Int, any Error>] = []
    }

    public init(configuration: ServiceConfiguration, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                logger: Logger = Logger(label: "vecshard")) throws {
        self.configuration = configuration
        self.logger = logger
        self.group = group
        var http = HTTPServerConfiguration(host: configuration.host, port: configuration.port)
        http.limits = configuration.limits
        if let cert = configuration.tlsCertificateFile, let key = configuration.tlsPrivateKeyFile {
            http.tls = try TLSContext(certificateChainFile: cert, privateKeyFile: key)
        } else if configuration.tlsCertificateFile != nil || configuration.tlsPrivateKeyFile != nil {
            throw ConfigurationError("--tls-cert and --tls-key must be given together")
        }
        let state = self.state
        let metrics = self.metrics
        var router = Router()
        router.observer = { metrics.record($0) }
        ServiceRoutes.addProbes(to: &router, phase: { state.withLockedValue { $0.phase } }, metrics: metrics)
        DataRoutes.add(to: &router, cluster: cluster)
        server = HTTPServer(configuration: http, router: router, group: group, logger: logger)
    }

    /// The bound port once the service listens (waits for that).
    public func waitUntilListening() async throws -> Int {
        try await withCheckedThrowingContinuation { continuation in
            let listening = state.withLockedValue { s -> Bool in
                if s.phase != .starting { return true }
                s.listeners.append(continuation)
                return false
            }
            if listening { continuation.resume(returning: server.port) }
        }
    }

    private func setPhase(_ phase: Phase) -> [CheckedContinuation<Int, any Error>] {
        state.withLockedValue { s in
            s.phase = phase
            defer { s.listeners.removeAll() }
            return s.listeners
        }
    }

    public func run() async throws {
        var shards: [LocalShard] = []
        do {
            try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
            shards = try await openLocalShards()
            cluster.set(try ClusterRouter(table: try RoutingTable(Self.standaloneTopology(shardCount: shards.count)),
                                          shards: Dictionary(uniqueKeysWithValues: shards.map { ($0.name, $0 as any ShardClient) })))
            try await server.start()
        } catch {
            for shard in shards { await shard.storage.close() }
            setPhase(.draining).forEach { $0.resume(throwing: error) }
            throw error
        }
        setPhase(.ready).forEach { $0.resume(returning: server.port) }
        logger.info("vecshard ready", metadata: ["port": "\(server.port)", "data-dir": "\(configuration.dataDirectory)"])
        // Wait for SIGTERM/SIGINT (or the service group's shutdown), then drain.
        try? await gracefulShutdown()
        _ = setPhase(.draining)
        logger.info("shutting down: draining in-flight requests")
        await server.shutdown(gracePeriod: configuration.shutdownGracePeriod)
        for shard in shards { await shard.storage.close() }
        logger.info("stopped")
    }

    /// Opens (or creates) the standalone shards `s0 ... s<N-1>` under `<data-dir>/shards/`;
    /// reopening recovers their collections.
    private func openLocalShards() async throws -> [LocalShard] {
        var shards: [LocalShard] = []
        for i in 0..<configuration.shardCount {
            let name = "s\(i)"
            let storage = try await Shard.open(directory: configuration.dataDirectory + "/shards/" + name, options: configuration.storage)
            shards.append(LocalShard(name: name, storage: storage))
        }
        logger.info("opened local shards", metadata: ["count": "\(shards.count)"])
        return shards
    }

    /// One group (`default`) of in-process shards.
    static func standaloneTopology(shardCount: Int) -> Topology {
        Topology(version: 1, groups: [ShardGroup(name: "default", shards: (0..<shardCount).map { ShardDescriptor(name: "s\($0)") })])
    }
}

/// The router, once the shards are open. Data routes answer 503 `starting` before that.
final class ClusterHandle: Sendable {
    private let router = Mutex<ClusterRouter?>(nil)

    func set(_ cluster: ClusterRouter) { router.withLock { $0 = cluster } }

    var current: ClusterRouter {
        get throws {
            guard let r = router.withLock({ $0 }) else {
                throw HTTPError(.serviceUnavailable, code: "starting", message: "the service is starting; shards are not open yet")
            }
            return r
        }
    }
}

public struct ConfigurationError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
