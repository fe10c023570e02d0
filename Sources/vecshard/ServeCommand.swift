import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import VecShardHTTP
import VecShardCluster
import VecShardServer

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the service (HTTP/1.1 and HTTP/2 on one port; TLS when a certificate is given)."
    )

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0 picks a free one).") var port = 8080
    @Option(name: .customLong("data-dir"), help: "Where the service keeps its data.") var dataDir = "./data"
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.") var logLevel = "info"
    @Option(name: .customLong("tls-cert"), help: "PEM certificate chain; enables TLS (with --tls-key).") var tlsCert: String?
    @Option(name: .customLong("tls-key"), help: "PEM private key for --tls-cert.") var tlsKey: String?
    @Option(name: .customLong("max-body-bytes"), help: "Largest accepted request body, in bytes.") var maxBodyBytes = 64 * 1024 * 1024
    @Option(name: .customLong("max-concurrent-streams"), help: "HTTP/2 streams one connection may have open.") var maxConcurrentStreams: UInt32 = 256
    @Option(name: .customLong("max-connection-body-bytes"),
            help: "Request-body bytes one connection may hold before it is throttled (HTTP/2 flow control); at least --max-body-bytes. (default: 67108864, or --max-body-bytes when larger)")
    var maxConnectionBodyBytes: Int?
    @Option(name: .customLong("max-buffered-body-bytes"),
            help: "Request-body bytes all connections together may hold; over it uploads are throttled (HTTP/2 window, HTTP/1.1 reads). (default: 536870912, or the connection budget when larger)")
    var maxBufferedBodyBytes: Int?
    @Option(name: .customLong("header-timeout-ms"),
            help: "Time from accept to the first request's headers (TLS handshake and HTTP/2 preface included), and for any request's headers.")
    var headerTimeoutMS = 10_000
    @Option(name: .customLong("body-timeout-ms"), help: "A request body that makes no progress for this long is answered 408.") var bodyTimeoutMS = 30_000
    @Option(name: .customLong("idle-timeout-ms"), help: "A keep-alive connection without a request for this long is closed (GOAWAY on HTTP/2).")
    var idleTimeoutMS = 120_000
    @Option(name: .customLong("max-connections"), help: "Open connections; more are closed at accept.") var maxConnections = 4096
    @Option(name: .customLong("max-concurrent-requests"),
            help: "Requests handled at one time, over all connections; more are answered 503 overloaded (with Retry-After).")
    var maxConcurrentRequests = 256
    @Option(name: .customLong("event-loop-threads"), help: "Network threads (default: one per core).") var eventLoopThreads: Int?
    @Option(name: .customLong("shutdown-grace-seconds"), help: "Time in-flight requests get to finish on SIGTERM.") var shutdownGraceSeconds = 25
    @Option(help: "Standalone mode: in-process shards (one group) under <data-dir>/shards.") var shards = 4
    @Option(help: "standalone (router + in-process shards), shard (one shard over gRPC) or router (remote shards).") var role = "standalone"
    @Option(name: .customLong("shard-id"), help: "--role shard: this shard's name in the topology.") var shardID: String?
    @Option(help: "--role router: the topology file (YAML or JSON).") var topology: String?
    @Option(name: .customLong("shard-id-from-pod-name"), help: "--role shard: derive the shard id from a StatefulSet pod name (<shard>-<ordinal>).") var podName: String?
    @Option(name: .customLong("min-in-sync-replicas"), help: "--role router: in-sync replicas that must make a write durable before it is acknowledged; replicas that miss a write leave the in-sync set until they caught up (a number, or all; default 1).")
    var minInSyncReplicas = "1"
    @Option(name: .customLong("write-quorum"), help: .hidden) var writeQuorum: Int?
    @Option(name: .customLong("catch-up-margin-seconds"), help: "--role shard: a restarted replica also asks its peer for the changes this far before its own newest write (writes in flight when it stopped).")
    var catchUpMarginSeconds = 30
    @Option(name: .customLong("tombstone-retention-seconds"), help: "How long deleted ids are remembered with the version of their delete, so that a replica catching up learns of deletes; a replica out of sync for longer is compared in full.")
    var tombstoneRetentionSeconds = 7 * 24 * 3600
    @Option(name: .customLong("request-timeout-ms"), help: "Default deadline of a data-API request; shards get the time left as grpc-timeout.") var requestTimeoutMS = 10_000
    @Flag(name: .customLong("no-hedging"), help: "--role router: never send a read to a second replica.") var noHedging = false
    @Flag(name: .customLong("await-sync"), help: "--role shard: take writes at once but no reads until a router has synchronised this replica from a peer; for shards with several replicas.") var awaitSync = false
    @Option(name: .customLong("health-check-interval-ms"), help: "--role router: how often every shard replica is checked (and repaired).")
    var healthCheckIntervalMS = 1000
    @Option(name: .customLong("rebalance-points-per-second"), help: "--role router: points a rebalance copies per second at most (0: no limit).")
    var rebalancePointsPerSecond = 20_000.0
    @Option(name: .customLong("max-searches-in-flight"), help: "--role router: searches in flight per shard; more wait and share one call (0: no limit, no coalescing).")
    var maxSearchesInFlight = 4
    @Option(name: .customLong("inject-search-delay-ms"), help: .hidden) var injectSearchDelayMS: Int?
    @Option(name: .customLong("max-collections"), help: "Collections each shard may hold; creating one more answers 400 limit_exceeded.") var maxCollections = 1000
    @Flag(name: .customLong("accept-wal-damage"), help: "Open collections whose write-ahead log is damaged by cutting it at the damage: the records after it are lost (the damaged files are renamed aside, not deleted). Without it such a collection answers 500 data_loss; see `vecshard recover`.") var acceptWALDamage = false
    @Option(name: .customLong("api-key"), help: "Require 'Authorization: Bearer <key>' (env VECSHARD_API_KEY).") var apiKey: String?
    @Option(name: .customLong("read-only-api-key"), help: "A key that may read and search only (env VECSHARD_READ_ONLY_API_KEY).") var readOnlyAPIKey: String?
    @Option(name: .customLong("shard-api-key"), help: "--role router|shard: the key sent on gRPC calls to shards and peer replicas (env VECSHARD_SHARD_API_KEY; default: --api-key).") var shardAPIKey: String?

    /// The per-connection body budget: the flag, else the default raised to one maximal body.
    var connectionBodyBytes: Int { maxConnectionBodyBytes ?? max(HTTPServerLimits().maxConnectionBodyBytes, maxBodyBytes) }
    var bufferedBodyBytes: Int { maxBufferedBodyBytes ?? max(HTTPServerLimits().maxBufferedBodyBytes, connectionBodyBytes) }

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level '\(logLevel)'") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
        guard maxBodyBytes > 0 else { throw ValidationError("--max-body-bytes must be positive") }
        guard rebalancePointsPerSecond >= 0, rebalancePointsPerSecond.isFinite else { throw ValidationError("--rebalance-points-per-second must be 0 (no limit) or positive") }
        guard connectionBodyBytes >= maxBodyBytes else {
            throw ValidationError("--max-connection-body-bytes (\(connectionBodyBytes)) must be at least --max-body-bytes (\(maxBodyBytes))")
        }
        guard bufferedBodyBytes >= connectionBodyBytes else {
            throw ValidationError("--max-buffered-body-bytes (\(bufferedBodyBytes)) must be at least --max-connection-body-bytes (\(connectionBodyBytes))")
        }
        for (flag, value) in [("--header-timeout-ms", headerTimeoutMS), ("--body-timeout-ms", bodyTimeoutMS), ("--idle-timeout-ms", idleTimeoutMS),
                              ("--max-connections", maxConnections), ("--max-concurrent-requests", maxConcurrentRequests)] where value <= 0 {
            throw ValidationError("\(flag) must be positive")
        }
        guard (1...256).contains(shards) else { throw ValidationError("--shards must be 1...256") }
        switch role {
        case "standalone": break
        case "shard":
            if let podName, PodIdentity.shardID(fromPodName: podName) == nil {
                throw ValidationError("--shard-id-from-pod-name '\(podName)' is not <shard>-<ordinal>")
            }
            guard shardID?.isEmpty == false || podName != nil else { throw ValidationError("--role shard needs --shard-id or --shard-id-from-pod-name") }
        case "router": guard topology != nil else { throw ValidationError("--role router needs --topology FILE") }
        default: throw ValidationError("unknown --role '\(role)'; use standalone, shard or router")
        }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "vecshard")
        var configuration = ServiceConfiguration()
        configuration.host = host
        configuration.port = port
        configuration.dataDirectory = dataDir
        configuration.tlsCertificateFile = tlsCert
        configuration.tlsPrivateKeyFile = tlsKey
        configuration.limits.maxBodyBytes = maxBodyBytes
        configuration.limits.maxConcurrentStreams = maxConcurrentStreams
        configuration.limits.maxConnectionBodyBytes = connectionBodyBytes
        configuration.limits.maxBufferedBodyBytes = bufferedBodyBytes
        configuration.limits.headerTimeout = .milliseconds(Int64(headerTimeoutMS))
        configuration.limits.bodyTimeout = .milliseconds(Int64(bodyTimeoutMS))
        configuration.limits.idleTimeout = .milliseconds(Int64(idleTimeoutMS))
        configuration.limits.maxConnections = maxConnections
        configuration.limits.maxConcurrentRequests = maxConcurrentRequests
        configuration.shutdownGracePeriod = .seconds(Int64(shutdownGraceSeconds))
        configuration.shardCount = shards
        configuration.storage.maxCollections = max(1, maxCollections)
        configuration.storage.acceptWALDamage = acceptWALDamage
        let minInSync: Int?
        if let writeQuorum {
            minInSync = writeQuorum
        } else if minInSyncReplicas == "all" {
            minInSync = nil
        } else if let n = Int(minInSyncReplicas), n >= 1 {
            minInSync = n
        } else {
            throw ValidationError("--min-in-sync-replicas must be a number of at least 1 or 'all', not '\(minInSyncReplicas)'")
        }
        configuration.storage.tombstoneRetentionSeconds = Double(max(0, tombstoneRetentionSeconds))
        configuration.catchUpMargin = .seconds(max(0, catchUpMarginSeconds))
        configuration.replication = ReplicatedShard.Policy(minInSyncReplicas: minInSync, hedging: !noHedging,
                                                           maxSearchesInFlight: maxSearchesInFlight > 0 ? maxSearchesInFlight : nil)
        configuration.requestTimeout = .milliseconds(max(1, requestTimeoutMS))
        configuration.awaitSync = awaitSync
        configuration.healthCheckInterval = .milliseconds(max(50, healthCheckIntervalMS))
        configuration.rebalancePointsPerSecond = rebalancePointsPerSecond
        configuration.injectedSearchDelay = injectSearchDelayMS.map { .milliseconds($0) }
        let environment = ProcessInfo.processInfo.environment
        configuration.access = AccessPolicy(apiKey: apiKey ?? environment["VECSHARD_API_KEY"],
                                            readOnlyAPIKey: readOnlyAPIKey ?? environment["VECSHARD_READ_ONLY_API_KEY"])
        configuration.shardAPIKey = shardAPIKey ?? environment["VECSHARD_SHARD_API_KEY"]
        switch role {
        case "shard": configuration.role = .shard(id: shardID ?? PodIdentity.shardID(fromPodName: podName!)!)
        case "router": configuration.role = .router(topologyFile: topology!)
        default: configuration.role = .standalone
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: eventLoopThreads ?? System.coreCount)
        let service = try VecShardService(configuration: configuration, group: group, logger: logger)
        let serviceGroup = ServiceGroup(configuration: .init(
            services: [.init(service: service)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await serviceGroup.run()
        try await group.shutdownGracefully()
    }
}
