import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle
import VecShardHTTP

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
        do {
            try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
            try await server.start()
        } catch {
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
    }
}

public struct ConfigurationError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
