import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import VecShardHTTP

/// Bulk-loads vectors through the REST API: batches of upserts, several in flight, a progress
/// bar (rate, ETA) on a terminal and plain lines otherwise, and a state file so that an
/// interrupted import resumes where it stopped (upserts are idempotent: a replayed batch is harmless).
struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Bulk-load a .fvecs, .npy (float32, 2-D) or JSON-lines file into a collection through the REST API.",
        discussion: """
            Ids of .fvecs/.npy rows are their row numbers (with --id-prefix in front). JSON lines are
            {"id": ..., "vector": [...], "metadata": {...}}. --categories adds {"category": N} from a
            file of one byte per row (../shared/bench/gen.py writes categories.u8).
            Progress is saved in FILE.import-state after every acknowledged batch; run the same
            command again to resume, or pass --restart to start over.
            """)

    @Option(help: "Base URL of the service (http://host:port).") var url = "http://127.0.0.1:8080"
    @Option(help: "Collection to load into (must exist).") var collection: String
    @Argument(help: "The file to load.") var file: String
    @Option(help: "Points per request.") var batch = 1000
    @Option(help: "Requests in flight at once.") var concurrency = 4
    @Option(name: .customLong("id-prefix"), help: "Prefix for row-number ids.") var idPrefix = ""
    @Option(help: "One byte per row: added as metadata 'category'.") var categories: String?
    @Option(name: .customLong("api-key"), help: "Bearer key, if the service requires one (env VECSHARD_API_KEY).") var apiKey: String?
    @Flag(help: "Ignore a saved state and start from the first row.") var restart = false
    @Option(help: "Stop after this many rows (for trials).") var limit: Int?

    func validate() throws {
        guard (1...10_000).contains(batch) else { throw ValidationError("--batch must be 1...10000 (the server's limit)") }
        guard (1...64).contains(concurrency) else { throw ValidationError("--concurrency must be 1...64") }
    }

    func run() async throws {
        guard let components = URLComponents(string: url), components.scheme == "http", let host = components.host else {
            throw ValidationError("--url must be http://host:port")
        }
        let peer = Peer(host: host, port: components.port ?? 80)
        let source = try VectorFile.open(file)
        let categoryBytes = try categories.map { try [UInt8](Data(contentsOf: URL(fileURLWithPath: $0))) }
        let statePath = file + ".import-state"
        var startRow = 0
        if !restart, let saved = try? String(contentsOfFile: statePath, encoding: .utf8), let row = Int(saved.trimmingCharacters(in: .whitespacesAndNewlines)) {
            startRow = row
        }
        let total = min(source.count, limit ?? .max)
        let progress = ImportProgress(total: total, start: startRow)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let client = HTTP2Client(group: group)
        var headers: [(String, String)] = [("content-type", "application/json")]
        if let key = apiKey ?? ProcessInfo.processInfo.environment["VECSHARD_API_KEY"] { headers.append(("authorization", "Bearer \(key)")) }
        let requestHeaders = headers
        let path = "/v1/collections/\(collection)/points"
        defer { progress.finish() }
        do {
            // Batches complete out of order; the saved row only advances over a contiguous prefix.
            var nextBatchStart = startRow
            var done = Set<Int>()
            var acknowledged = startRow
            try await withThrowingTaskGroup(of: (Int, Int).self) { tasks in
                var inFlight = 0
                func submit() throws {
                    guard nextBatchStart < total else { return }
                    let from = nextBatchStart, to = min(total, from + batch)
                    nextBatchStart = to
                    let body = try source.jsonBody(rows: from..<to, idPrefix: idPrefix, categories: categoryBytes)
                    inFlight += 1
                    tasks.addTask {
                        let response = try await client.execute(ClientRequest(method: "POST", path: path, headers: .init(requestHeaders), body: body),
                                                                to: peer, timeout: .seconds(120))
                        guard response.status == 200 else {
                            throw ValidationError("rows \(from)..<\(to) were refused: HTTP \(response.status) \(String(buffer: response.body))")
                        }
                        return (from, to)
                    }
                }
                for _ in 0..<concurrency { try submit() }
                while inFlight > 0, let (from, to) = try await tasks.next() {
                    inFlight -= 1
                    done.insert(from)
                    progress.add(to - from)
                    while done.contains(acknowledged) {
                        done.remove(acknowledged)
                        acknowledged = min(total, acknowledged + batch)
                    }
                    try String(acknowledged).write(toFile: statePath, atomically: true, encoding: .utf8)
                    try submit()
                }
            }
        } catch {
            await client.shutdown()
            try? await group.shutdownGracefully()
            throw error
        }
        await client.shutdown()
        try await group.shutdownGracefully()
        if total == source.count { try? FileManager.default.removeItem(atPath: statePath) }
    }
}

/// Rows of a vector file, rendered as REST upsert bodies.
enum VectorFile {
    case dense(data: Data, offset: Int, stride: Int, dimension: Int, count: Int, rowHeader: Int)
    case jsonLines([Substring])

    static func open(_ path: String) throws -> VectorFile {
        let data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        if path.hasSuffix(".fvecs") {
            guard data.count >= 4 else { throw ValidationError("\(path) is empty") }
            let dim = Int(data.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) })
            guard dim > 0, data.count % (4 + 4 * dim) == 0 else { throw ValidationError("\(path) is not a TEXMEX .fvecs file") }
            return .dense(data: data, offset: 0, stride: 4 + 4 * dim, dimension: dim, count: data.count / (4 + 4 * dim), rowHeader: 4)
        }
        if path.hasSuffix(".npy") {
            return try parseNPY(data, path: path)
        }
        if path.hasSuffix(".jsonl") || path.hasSuffix(".ndjson") || path.hasSuffix(".json") {
            let text = String(decoding: data, as: UTF8.self)
            return .jsonLines(text.split(separator: "\n", omittingEmptySubsequences: true))
        }
        throw ValidationError("\(path): unknown format; use .fvecs, .npy or .jsonl")
    }

    /// NumPy .npy, version 1 to 3: little-endian float32, C order, two dimensions.
    static func parseNPY(_ data: Data, path: String) throws -> VectorFile {
        let bytes = [UInt8](data.prefix(12))
        guard bytes.count >= 10, bytes[0] == 0x93, String(decoding: bytes[1..<6], as: UTF8.self) == "NUMPY" else {
            throw ValidationError("\(path) is not a .npy file")
        }
        let major = bytes[6]
        let headerLength = major == 1 ? Int(bytes[8]) | Int(bytes[9]) << 8
            : Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
        let headerStart = major == 1 ? 10 : 12
        let header = String(decoding: data[headerStart..<(headerStart + headerLength)], as: UTF8.self)
        guard header.contains("'descr': '<f4'") else { throw ValidationError("\(path): only little-endian float32 arrays ('<f4') are supported") }
        guard header.contains("'fortran_order': False") else { throw ValidationError("\(path): only C-order arrays are supported") }
        guard let open = header.range(of: "'shape': ("), let close = header[open.upperBound...].firstIndex(of: ")") else {
            throw ValidationError("\(path): no shape in the header")
        }
        let shape = header[open.upperBound..<close].split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard shape.count == 2, shape[1] > 0 else { throw ValidationError("\(path): the array must be 2-D (rows x dimension), got shape \(shape)") }
        let offset = headerStart + headerLength
        guard data.count >= offset + shape[0] * shape[1] * 4 else { throw ValidationError("\(path) is truncated") }
        return .dense(data: data, offset: offset, stride: 4 * shape[1], dimension: shape[1], count: shape[0], rowHeader: 0)
    }

    var count: Int {
        switch self {
        case .dense(_, _, _, _, let count, _): return count
        case .jsonLines(let lines): return lines.count
        }
    }

    func jsonBody(rows: Range<Int>, idPrefix: String, categories: [UInt8]?) throws -> ByteBuffer {
        var out = ByteBuffer()
        out.writeString(#"{"points":["#)
        switch self {
        case .dense(let data, let offset, let stride, let dimension, _, let rowHeader):
            out.reserveCapacity(rows.count * (dimension * 12 + 48))
            data.withUnsafeBytes { raw in
                for row in rows {
                    if row > rows.lowerBound { out.writeString(",") }
                    out.writeString(#"{"id":"\#(idPrefix)\#(row)","vector":["#)
                    let base = offset + row * stride + rowHeader
                    for j in 0..<dimension {
                        if j > 0 { out.writeString(",") }
                        out.writeString(raw.loadUnaligned(fromByteOffset: base + 4 * j, as: Float.self).description)
                    }
                    out.writeString("]")
                    if let categories, row < categories.count { out.writeString(#","metadata":{"category":\#(categories[row])}"#) }
                    out.writeString("}")
                }
            }
        case .jsonLines(let lines):
            for row in rows {
                if row > rows.lowerBound { out.writeString(",") }
                out.writeString(String(lines[row]))
            }
        }
        out.writeString("]}")
        return out
    }
}

/// A progress bar on a terminal (rate and ETA, redrawn in place); plain lines every few seconds otherwise.
final class ImportProgress: @unchecked Sendable {
    private let total: Int
    private var done: Int
    private let start = ContinuousClock.now
    private let startRow: Int
    private var lastPrint = ContinuousClock.now
    private let terminal = isatty(STDERR_FILENO) == 1

    init(total: Int, start: Int) {
        self.total = total
        self.done = start
        self.startRow = start
        if start > 0 { log("resuming at row \(start) of \(total)") }
    }

    func add(_ rows: Int) {
        done += rows
        let now = ContinuousClock.now
        guard terminal ? now - lastPrint > .milliseconds(200) : now - lastPrint > .seconds(5) else { return }
        lastPrint = now
        report(final: false)
    }

    func finish() { report(final: true) }

    private func report(final: Bool) {
        let seconds = max((ContinuousClock.now - start) / .seconds(1), 1e-9)
        let rate = Double(done - startRow) / seconds
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let fraction = total == 0 ? 1 : Double(done) / Double(total)
        let figures = "\(done)/\(total) rows, \(Int(rate)) rows/s, ETA \(Int(eta)) s"
        if terminal {
            let width = 30, filled = Int(fraction * Double(width))
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            FileHandle.standardError.write(Data("\r[\(bar)] \(Int(fraction * 100))% \(figures)   \(final ? "\n" : "")".utf8))
        } else {
            log((final ? "done: " : "") + figures)
        }
    }

    private func log(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
