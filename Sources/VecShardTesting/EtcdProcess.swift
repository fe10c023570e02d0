import Foundation

/// Test aid: a real etcd (Debian's etcd-server, installed by scripts/bootstrap.sh) on 127.0.0.1
/// with ephemeral ports and a temporary data directory. It can be killed (SIGKILL) and started
/// again on the same ports and data (an outage), and is stopped and removed by `stop()`.
public final class EtcdProcess: @unchecked Sendable {
    private var process: Process
    public let dataDir: String
    public let clientPort: Int
    public let peerPort: Int
    private let executable: String

    /// A free TCP port on 127.0.0.1 (bound, read, released).
    public static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// Starts etcd (it answers a moment later: callers retry their first request).
    public init() throws {
        dataDir = FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-etcd-\(UUID().uuidString)").path
        clientPort = Self.freePort()
        peerPort = Self.freePort()
        guard let etcd = ["/usr/bin/etcd", "/usr/local/bin/etcd"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSLocalizedDescriptionKey: "etcd is not installed: run scripts/bootstrap.sh (it installs etcd-server)"])
        }
        executable = etcd
        process = Process()
        try launch()
    }

    private func launch() throws {
        let client = "http://127.0.0.1:\(clientPort)", peer = "http://127.0.0.1:\(peerPort)"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = ["--name", "test", "--data-dir", dataDir, "--listen-client-urls", client, "--advertise-client-urls", client,
                       "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "test=\(peer)",
                       "--logger", "zap", "--log-level", "error"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        process = p
    }

    /// `etcd://127.0.0.1:PORT` + `prefix`.
    public func url(prefix: String = "/vecshard") -> String { "etcd://127.0.0.1:\(clientPort)\(prefix)" }

    public var isRunning: Bool { process.isRunning }

    /// SIGKILL, as a crash or a lost node would stop it; the data stays.
    public func kill() {
        guard process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Starts it again on the same ports and data after `kill()`.
    public func restart() throws {
        guard !process.isRunning else { return }
        try launch()
    }

    /// Stops it and removes its data.
    public func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: dataDir)
    }
}
