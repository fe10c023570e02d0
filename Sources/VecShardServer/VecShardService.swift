import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
import VecShardCluster
import VecShardHTTP
import VecShardRPC
import VecShardRouting
import VecShardShard
import VecShardShardAPI
import VecShardStorage
import VecShardTesting

/// What this process is (docs/ARCHITECTURE.md, "Processes and roles").
public enum ServiceRole: Sendable, Equatable {
    /// Router plus `shardCount` in-process shards: the default, needs nothing else running.
    case standalone
    /// One shard replica: its data under the data directory, served over gRPC.
    case shard(id: String)
    /// Stateless: routes to the remote shards of the topology file.
    case router(topologyFile: String)
}

/// Settings of `vecshard serve`.
public struct ServiceConfiguration: Sendable {
    public var role = ServiceRole.standalone
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
    /// API keys for the data and admin API, and for the shard role's gRPC service (none: open).
    public var access = AccessPolicy()
    /// Router and shard roles: the key sent as `Authorization: Bearer` on gRPC calls to shards and
    /// to peer replicas (nil: `access.apiKey`).
    public var shardAPIKey: String?
    /// Router role: write quorum and hedged reads over each shard's replicas.
    public var replication = ReplicatedShard.Policy()
    /// Default deadline of a data-API request (the `x-request-timeout-ms` header overrides it);
    /// shard calls get the time left as `grpc-timeout`.
    public var requestTimeout: Duration = .seconds(10)
    /// Router role: points a rebalance copies per second at most (0: no limit).
    public var rebalancePointsPerSecond: Double = 20_000
    /// How often a router checks its topology file for changes.
    public var topologyPollInterval: Duration = .seconds(2)
    /// How often a router asks every shard replica for its state (active health checks, replica repair).
    public var healthCheckInterval: Duration = .seconds(1)
    /// Shard role: start as a replica that takes writes but answers no reads until a router has
    /// synchronised it from a peer replica (`--await-sync`; for shards with several replicas).
    public var awaitSync = false
    /// Shard role: a restarted replica also catches up on this much write time before its own
    /// newest version (`--catch-up-margin-seconds`).
    public var catchUpMargin: Duration = .seconds(30)
    /// For tests and benchmarks only: every search of a shard waits this long first (a slow
    /// replica in the shard role, slow in-process shards standalone).
    public var injectedSearchDelay: Duration?

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
    private let shardService = ShardServiceHandle()
    /// Background loops (topology file watch, replica health checks), cancelled on shutdown.
    private let loops = Mutex<[Task<Void, Never>]>([])

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
        let load = ServerLoad()
        var router = Router()
        router.observer = { metrics.record($0) }
        let access = configuration.access
        if access.isEnabled { router.authorizer = { access.check($0) } }
        let shardService = self.shardService
        ServiceRoutes.addProbes(to: &router, phase: { state.withLockedValue { $0.phase } }, metrics: metrics,
                                httpStats: { load.stats }, notReadyReason: { shardService.notReadyReason })
        switch configuration.role {
        case .standalone, .router: DataRoutes.add(to: &router, cluster: cluster, requestTimeout: configuration.requestTimeout)
        case .shard: shardService.install(into: &router)
        }
        server = HTTPServer(configuration: http, router: router, group: group, logger: logger, load: load)
    }

    /// The HTTP server's connection, budget and load counters.
    public var httpStats: HTTPServerStats { server.load.stats }

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

    /// The storage options of local shards: the configured ones, with storage's warnings
    /// (WAL cuts and damage, quarantined points, failed maintenance, a full disk) logged.
    private var storageOptions: StorageOptions {
        var options = configuration.storage
        if options.eventHandler == nil {
            let logger = self.logger
            options.eventHandler = { event in
                logger.warning("storage: \(event.message)", metadata: ["collection": "\(event.collection)", "event": "\(event.kind.rawValue)"])
            }
        }
        return options
    }

    public func run() async throws {
        var shards: [LocalShard] = []
        var remoteClient: HTTP2Client?
        // Standalone: the data directory's lock (a shard role's storage takes the same lock itself).
        var dataLock: DataDirectoryLock?
        defer { dataLock?.release() }
        do {
            try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
            switch configuration.role {
            case .standalone:
                dataLock = try DataDirectoryLock.acquire(configuration.dataDirectory)
                shards = try await openLocalShards()
                let delay = configuration.injectedSearchDelay
                cluster.set(try ClusterRouter(table: try RoutingTable(Self.standaloneTopology(shardCount: shards.count)),
                                              shards: Dictionary(uniqueKeysWithValues: shards.map { ($0.name, DelayedShard.wrap($0, delay: delay)) })))
            case .shard(let id):
                let storage = try await Shard.open(directory: configuration.dataDirectory, options: storageOptions)
                let shard = LocalShard(name: id, storage: storage)
                shards = [shard]
                // Peers are reached over gRPC for replica repair (a Scan of one of them).
                let client = HTTP2Client(group: group)
                remoteClient = client
                let grpc = GRPCClient(http: client, apiKey: configuration.shardAPIKey ?? configuration.access.apiKey)
                let repairable = RepairableShard(shard, awaitSync: configuration.awaitSync, catchUpFile: configuration.dataDirectory + "/CATCHUP",
                                                 margin: configuration.catchUpMargin) { address in
                    RemoteShard(name: id, peer: Peer(address) ?? Peer(host: address, port: 0), client: grpc, timeout: .hours(2))
                }
                shardService.set(ShardGRPC.service(for: DelayedShard.wrap(repairable, delay: configuration.injectedSearchDelay),
                                                   maxMessageBytes: configuration.limits.maxBodyBytes),
                                 replica: repairable)
            case .router(let file):
                let fileTopology = try TopologyFile.load(path: file)
                // The router's own state: the topology it last accepted (a PUT, a rebalance's
                // flip) and the running or last rebalance, which it resumes.
                let store = try FileRebalanceStore(directory: configuration.dataDirectory + "/router")
                let saved = try store.load()
                var topology = fileTopology
                if let accepted = saved.topology, accepted.version > fileTopology.version { topology = accepted }
                var everyShard = topology
                if let record = saved.rebalance, record.isRunning || record.phase == .failed {
                    // A failed one is kept as it stopped (the old layout routes) until it is aborted.
                    topology = record.phase == .cleaning ? record.to : record.from
                    // Clients for the shards of both layouts (the copy and the clean-up use them).
                    everyShard = record.from
                    for group in record.to.groups where everyShard.group(named: group.name) == nil { everyShard.groups.append(group) }
                    for group in record.to.groups {
                        let index = everyShard.groups.firstIndex { $0.name == group.name }!
                        for shard in group.shards where !everyShard.allShards.contains(where: { $0.shard.name == shard.name }) {
                            everyShard.groups[index].shards.append(shard)
                        }
                    }
                }
                let client = HTTP2Client(group: group)
                remoteClient = client
                var rpc = GRPCClient(http: client, apiKey: configuration.shardAPIKey ?? configuration.access.apiKey)
                let routerID = "router-" + String(UInt64.random(in: 0 ... .max), radix: 36)
                rpc.routerID = routerID
                let grpc = rpc
                let policy = configuration.replication
                var shards = try Self.remoteShards(everyShard, client: grpc, policy: policy)
                if saved.rebalance.map({ $0.isRunning || $0.phase == .failed }) == true {
                    // A shard whose replicas the change altered: the client of the layout routing now.
                    for (_, shard) in topology.allShards { shards[shard.name] = try Self.remoteShard(shard, client: grpc, policy: policy) }
                }
                let router = try ClusterRouter(table: try RoutingTable(topology), shards: shards, rebalanceStore: store,
                                               rebalancePointsPerSecond: configuration.rebalancePointsPerSecond, routerID: routerID)
                cluster.set(router, connect: { try Self.remoteShard($0, client: grpc, policy: policy) })
                if let record = saved.rebalance {
                    await router.resumeRebalance(record)
                    if record.isRunning {
                        logger.notice("resuming rebalance", metadata: ["id": "\(record.id)", "phase": "\(record.phase.rawValue)",
                                                                       "from": "\(record.from.version)", "to": "\(record.to.version)"])
                    }
                }
                if topology.version != fileTopology.version {
                    logger.notice("routing by the topology this router accepted last, not the file's", metadata: [
                        "version": "\(topology.version)", "file-version": "\(fileTopology.version)", "saved": "\(store.directory)/topology.json"])
                }
                watchTopologyFile(file, every: configuration.topologyPollInterval)
                checkReplicas(every: configuration.healthCheckInterval)
                logger.info("routing", metadata: ["topology": "\(file)", "version": "\(topology.version)",
                                                  "shards": "\(topology.allShards.count)"])
            }
            try await server.start()
        } catch {
            for shard in shards { await shard.storage.close() }
            logger.critical("vecshard could not start: \(error)", metadata: ["data-dir": "\(configuration.dataDirectory)"])
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
        let background = loops.withLock { $0 }
        for task in background { task.cancel() }
        // A running rebalance stops here and resumes from its saved state when the router restarts.
        await (try? cluster.current)?.stopRebalance()
        for task in background { await task.value }
        // A replica sync in progress writes to the storage: let it stop first.
        await shardService.stopSync()
        for shard in shards { await shard.storage.close() }
        await remoteClient?.shutdown()
        logger.info("stopped")
    }

    /// Opens (or creates) the standalone shards `s0 ... s<N-1>` under `<data-dir>/shards/`;
    /// reopening recovers their collections.
    private func openLocalShards() async throws -> [LocalShard] {
        var shards: [LocalShard] = []
        for i in 0..<configuration.shardCount {
            let name = "s\(i)"
            let storage: Shard
            do {
                storage = try await Shard.open(directory: configuration.dataDirectory + "/shards/" + name, options: storageOptions)
            } catch {
                for shard in shards { await shard.storage.close() }
                throw error
            }
            shards.append(LocalShard(name: name, storage: storage))
        }
        logger.info("opened local shards", metadata: ["count": "\(shards.count)"])
        return shards
    }

    /// A gRPC client per shard of the topology (its first replica).
    static func remoteShards(_ topology: Topology, client: GRPCClient, policy: ReplicatedShard.Policy) throws -> [String: any ShardClient] {
        var shards: [String: any ShardClient] = [:]
        for (_, shard) in topology.allShards { shards[shard.name] = try remoteShard(shard, client: client, policy: policy) }
        return shards
    }

    static func remoteShard(_ shard: ShardDescriptor, client: GRPCClient, policy: ReplicatedShard.Policy = ReplicatedShard.Policy()) throws -> any ShardClient {
        guard !shard.replicas.isEmpty else {
            throw ConfigurationError("shard '\(shard.name)' has no replica address; a router needs host:port for every shard")
        }
        let replicas = try shard.replicas.map { address -> (address: String, client: any ShardClient) in
            guard let peer = Peer(address) else { throw ConfigurationError("replica address '\(address)' of shard '\(shard.name)' is not host:port") }
            return (address, RemoteShard(name: shard.name, peer: peer, client: client))
        }
        return ReplicatedShard(name: shard.name, replicas: replicas, policy: policy)
    }

    /// Reloads the topology file when its content changes (Kubernetes updates a mounted
    /// ConfigMap in place); an invalid or refused file is logged and the current topology kept.
    private func watchTopologyFile(_ path: String, every interval: Duration) {
        let handle = cluster, logger = self.logger
        var last = FileManager.default.contents(atPath: path)
        let task = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                let now = FileManager.default.contents(atPath: path)
                guard now != last, now != nil else { continue }
                last = now
                do {
                    let topology = try TopologyFile.load(path: path)
                    try await handle.current.replaceTopology(topology, expectedVersion: nil, makeClient: handle.makeShardClient)
                    logger.info("topology reloaded", metadata: ["file": "\(path)", "version": "\(topology.version)"])
                } catch {
                    logger.error("topology file changed but was not applied; keeping the current topology", metadata: ["file": "\(path)", "reason": "\(error)"])
                }
            }
        }
        loops.withLock { $0.append(task) }
    }

    /// Active health checks of every replicated shard, which also drive replica repair.
    private func checkReplicas(every interval: Duration) {
        let handle = cluster, logger = self.logger
        let task = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                guard let router = try? handle.current else { continue }
                // All shards at once: a round takes one health-check timeout, not one per shard.
                await withTaskGroup(of: Void.self) { group in
                    for shard in router.replicaSets {
                        group.addTask { await shard.checkHealth(timeout: .seconds(2), log: { logger.notice("\($0)") }) }
                    }
                }
            }
        }
        loops.withLock { $0.append(task) }
    }

    /// One group (`default`) of in-process shards.
    static func standaloneTopology(shardCount: Int) -> Topology {
        Topology(version: 1, groups: [ShardGroup(name: "default", shards: (0..<shardCount).map { ShardDescriptor(name: "s\($0)") })])
    }
}

/// The router, once the shards are open. Data routes answer 503 `starting` before that.
final class ClusterHandle: Sendable {
    private let router = Mutex<ClusterRouter?>(nil)
    private let connect = Mutex<(@Sendable (ShardDescriptor) throws -> any ShardClient)?>(nil)

    func set(_ cluster: ClusterRouter, connect: (@Sendable (ShardDescriptor) throws -> any ShardClient)? = nil) {
        router.withLock { $0 = cluster }
        self.connect.withLock { $0 = connect }
    }

    /// A client for a shard a new topology adds (router role: gRPC to its first replica).
    func makeShardClient(_ shard: ShardDescriptor) throws -> any ShardClient {
        guard let connect = connect.withLock({ $0 }) else {
            throw ShardCallError(.invalidArgument, .invalidTopology,
                                 "standalone mode has a fixed set of in-process shards; shard '\(shard.name)' cannot be added (run --role router with shard processes)")
        }
        return try connect(shard)
    }

    var current: ClusterRouter {
        get throws {
            guard let r = router.withLock({ $0 }) else {
                throw HTTPError(.serviceUnavailable, code: "starting", message: "the service is starting; shards are not open yet")
            }
            return r
        }
    }
}

/// The gRPC shard service of a `--role shard` process, once its storage is open (UNAVAILABLE
/// before that).
final class ShardServiceHandle: Sendable {
    private let service = Mutex<GRPCService?>(nil)
    private let replica = Mutex<RepairableShard?>(nil)

    func set(_ s: GRPCService, replica r: RepairableShard? = nil) {
        service.withLock { $0 = s }
        replica.withLock { $0 = r }
    }

    /// Cancels a replica sync in progress and waits for it (before the storage closes).
    func stopSync() async {
        await replica.withLock({ $0 })?.stopSync()
    }

    /// Why `/readyz` says not ready although the process runs: the replica is catching up.
    var notReadyReason: String? {
        guard let r = replica.withLock({ $0 }), r.replicaState != .serving else { return nil }
        return "replica is \(r.replicaState.rawValue): it takes writes but answers no reads until a router has synchronised it from a peer"
    }

    func install(into router: inout Router) {
        let handle = self
        router.rejectionShaper = GRPCService.rejectionShaper
        router.add("POST", "/\(ShardGRPC.serviceName)/{method}", .async { request in
            guard let service = handle.service.withLock({ $0 }) else {
                return ServerResponse(status: .ok, headers: ["content-type": "application/grpc", "grpc-status": "14",
                                                             "grpc-message": "shard%20is%20starting"])
            }
            return await service.handle(request)
        })
    }
}

public struct ConfigurationError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
