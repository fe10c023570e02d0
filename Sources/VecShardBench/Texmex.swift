#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Errors of the benchmark drivers (missing or malformed dataset files, bad options).
public struct BenchError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Reads the TEXMEX vector files written by ../shared/bench/gen.py: per row an int32
/// dimension, then that many float32 (.fvecs) or int32 (.ivecs) values, little-endian.
public enum Texmex {
    /// The whole file as bytes.
    public static func readFile(_ path: String) throws -> [UInt8] {
        guard let f = fopen(path, "rb") else { throw BenchError("cannot open \(path) (errno \(errno))") }
        defer { fclose(f) }
        fseek(f, 0, SEEK_END)
        let size = ftell(f)
        fseek(f, 0, SEEK_SET)
        guard size >= 0 else { throw BenchError("cannot size \(path)") }
        var bytes = [UInt8](repeating: 0, count: size)
        let n = bytes.withUnsafeMutableBytes { fread($0.baseAddress, 1, size, f) }
        guard n == size else { throw BenchError("short read of \(path): \(n) of \(size) bytes") }
        return bytes
    }

    /// Rows of a .fvecs file, flattened row-major, and their dimension.
    public static func readFvecs(_ path: String) throws -> (values: [Float], dimension: Int) {
        let (raw, dim) = try readVecs(path)
        return (raw.map { Float(bitPattern: $0) }, dim)
    }

    /// Rows of an .ivecs file, flattened row-major, and their width.
    public static func readIvecs(_ path: String) throws -> (values: [Int32], width: Int) {
        let (raw, dim) = try readVecs(path)
        return (raw.map { Int32(bitPattern: $0) }, dim)
    }

    private static func readVecs(_ path: String) throws -> ([UInt32], Int) {
        let bytes = try readFile(path)
        guard bytes.count >= 4 else { return ([], 0) }
        let words = bytes.withUnsafeBytes { b in
            (0..<(bytes.count / 4)).map { UInt32(littleEndian: b.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)) }
        }
        let dim = Int(words[0])
        guard dim > 0, words.count % (dim + 1) == 0, bytes.count % 4 == 0 else {
            throw BenchError("\(path): \(bytes.count) bytes is not a whole number of rows of dimension \(dim)")
        }
        let rows = words.count / (dim + 1)
        var out = [UInt32]()
        out.reserveCapacity(rows * dim)
        for r in 0..<rows {
            guard Int(words[r * (dim + 1)]) == dim else { throw BenchError("\(path): row \(r) does not have dimension \(dim)") }
            out += words[(r * (dim + 1) + 1)..<((r + 1) * (dim + 1))]
        }
        return (out, dim)
    }
}

/// A dataset folder written by gen.py.
public struct BenchDataset {
    public let path: String
    public let metric: String
    public let dimension: Int
    /// n × dimension floats.
    public let base: [Float]
    /// nq × dimension floats.
    public let queries: [Float]
    /// nq × gtWidth exact neighbour ids, best first.
    public let groundTruth: [Int32]
    public let gtWidth: Int
    /// Category of each base vector, of each filtered query, and the exact neighbours
    /// within the query's category (−1 pads). Empty when not loaded.
    public let categories: [UInt8]
    public let queryCategories: [UInt8]
    public let groundTruthFiltered: [Int32]

    public var count: Int { base.count / dimension }
    public var queryCount: Int { queries.count / dimension }

    public init(path: String, filtered: Bool) throws {
        self.path = path
        let meta = String(decoding: try Texmex.readFile(path + "/meta.json"), as: UTF8.self)
        guard let metric = Self.jsonString(meta, key: "metric") else { throw BenchError("\(path)/meta.json has no metric") }
        self.metric = metric
        let (base, dim) = try Texmex.readFvecs(path + "/base.fvecs")
        let (queries, qdim) = try Texmex.readFvecs(path + "/query.fvecs")
        guard dim == qdim else { throw BenchError("queries have dimension \(qdim), base \(dim)") }
        let (gt, width) = try Texmex.readIvecs(path + "/gt.ivecs")
        self.base = base
        self.queries = queries
        self.dimension = dim
        self.groundTruth = gt
        self.gtWidth = width
        if filtered {
            categories = try Texmex.readFile(path + "/categories.u8")
            queryCategories = try Texmex.readFile(path + "/query_category.u8")
            groundTruthFiltered = try Texmex.readIvecs(path + "/gt_filtered.ivecs").values
        } else {
            categories = []
            queryCategories = []
            groundTruthFiltered = []
        }
    }

    /// The string value of a top-level key in a flat JSON object (enough for meta.json).
    static func jsonString(_ json: String, key: String) -> String? {
        let needle = Array("\"\(key)\"".utf8), hay = Array(json.utf8)
        guard needle.count <= hay.count,
              let at = (0...(hay.count - needle.count)).first(where: { Array(hay[$0..<($0 + needle.count)]) == needle })
        else { return nil }
        let rest = String(decoding: hay[(at + needle.count)...], as: UTF8.self)
        let after = rest.drop { $0 == " " || $0 == ":" }
        guard after.first == "\"" else { return nil }
        return String(after.dropFirst().prefix { $0 != "\"" })
    }
}
