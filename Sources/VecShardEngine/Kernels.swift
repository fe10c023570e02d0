import CVecKernels

/// The distance kernels, with the instruction-set level chosen once at startup.
///
/// Decided by measurement (see BENCHMARKS.md, "Kernels"): the kernels are C
/// (`CVecKernels`), written once with clang's generic vectors and compiled for
/// AVX-512, AVX2+FMA and the baseline, because Swift's `SIMD` types compile for the
/// baseline x86-64 target only (SSE2, no FMA) unless the whole package is built with
/// -march flags, which would make the binary unportable.
public enum VectorKernels {
    /// Instruction-set levels, lowest first.
    public enum Level: Int, Sendable, CaseIterable {
        case baseline = 0, avx2 = 1, avx512 = 2
        public var name: String { String(cString: vk_isa_name(vk_isa(rawValue: UInt32(rawValue)))) }
    }

    /// The best level this CPU supports.
    public static var supported: Level { Level(rawValue: Int(vk_detect_isa().rawValue)) ?? .baseline }
    /// The level in use.
    public static var active: Level { Level(rawValue: Int(vk_active_isa().rawValue)) ?? .baseline }

    /// Switches every kernel to `level` (for tests and measurements; not while searching).
    /// Returns false when the CPU lacks it.
    @discardableResult
    public static func force(_ level: Level) -> Bool { vk_force_isa(vk_isa(rawValue: UInt32(level.rawValue))) == 0 }

    /// Inner product of two equal-length vectors.
    public static func dot(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count)
        return vk_dot(a, b, a.count)
    }

    /// Squared Euclidean distance of two equal-length vectors.
    public static func l2Squared(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count)
        return vk_l2sq(a, b, a.count)
    }

    /// Score of every row of `rows` (row-major, rows.count / q.count rows) against q
    /// under `metric`, higher is closer (cosine: inner product, rows assumed unit length).
    public static func scores(_ q: [Float], rows: [Float], metric: DistanceMetric) -> [Float] {
        precondition(!q.isEmpty && rows.count % q.count == 0)
        let n = rows.count / q.count
        var out = [Float](repeating: 0, count: n)
        out.withUnsafeMutableBufferPointer { o in
            ScoreKernel(metric: metric).scoreRows(q, rows, dim: q.count, count: n, into: o.baseAddress!)
        }
        return out
    }
}

/// Scores under one metric on raw pointers; higher is closer.
struct ScoreKernel {
    let metric: DistanceMetric

    @inline(__always) func score(_ q: UnsafePointer<Float>, _ x: UnsafePointer<Float>, dim: Int) -> Float {
        metric == .l2 ? -vk_l2sq(q, x, dim) : vk_dot(q, x, dim)
    }

    /// out[i] = score(q, base + ids[i]*dim) for i in 0..<count (rows prefetched ahead).
    @inline(__always) func scoreGather(_ q: UnsafePointer<Float>, _ base: UnsafePointer<Float>, dim: Int,
                                       ids: UnsafePointer<UInt32>, count: Int, into out: UnsafeMutablePointer<Float>) {
        if metric == .l2 {
            vk_l2sq_gather(q, base, dim, ids, count, out)
            for i in 0..<count { out[i] = -out[i] }
        } else {
            vk_dot_gather(q, base, dim, ids, count, out)
        }
    }

    /// out[i] = score(q, rows[i]) for i in 0..<count (rows prefetched ahead).
    @inline(__always) func scorePointers(_ q: UnsafePointer<Float>, _ rows: UnsafePointer<UnsafePointer<Float>>, dim: Int,
                                         count: Int, into out: UnsafeMutablePointer<Float>) {
        rows.withMemoryRebound(to: Optional<UnsafePointer<Float>>.self, capacity: count) { r in
            if metric == .l2 {
                vk_l2sq_ptrs(q, r, dim, count, out)
                for i in 0..<count { out[i] = -out[i] }
            } else {
                vk_dot_ptrs(q, r, dim, count, out)
            }
        }
    }

    /// out[i] = score(q, rows + i*dim) for i in 0..<count.
    @inline(__always) func scoreRows(_ q: UnsafePointer<Float>, _ rows: UnsafePointer<Float>, dim: Int, count: Int,
                                     into out: UnsafeMutablePointer<Float>) {
        if metric == .l2 {
            vk_l2sq_rows(q, rows, dim, count, out)
            for i in 0..<count { out[i] = -out[i] }
        } else {
            vk_dot_rows(q, rows, dim, count, out)
        }
    }
}

/// Checks and prepares vectors given to an index.
struct VectorInput {
    let metric: DistanceMetric
    let dimension: Int

    /// Throws unless `floats` holds whole rows that `VectorCheck` accepts (finite
    /// components whose squares are finite; under cosine a squared norm of at least
    /// `Float.leastNormalMagnitude`). Returns the row count.
    func validate(_ floats: UnsafeBufferPointer<Float>) throws -> Int {
        guard floats.count % dimension == 0 else {
            if floats.count < dimension || floats.count > 0 && floats.count < 2 * dimension {
                throw EngineError.dimensionMismatch(got: floats.count, expected: dimension)
            }
            throw EngineError.ragged(floats: floats.count, dimension: dimension)
        }
        let rows = floats.count / dimension
        for r in 0..<rows {
            let row = UnsafeBufferPointer(rebasing: floats[(r * dimension)..<((r + 1) * dimension)])
            switch VectorCheck.problem(row, metric: metric) {
            case nil: continue
            case let .nonFinite(c)?: throw EngineError.nonFiniteComponent(row: r, component: c)
            case let .componentTooLarge(c, _)?: throw EngineError.componentTooLarge(row: r, component: c)
            case .noDirection?: throw EngineError.zeroVector(row: r)
            }
        }
        return rows
    }

    /// Rows ready to store: normalized to unit length under cosine, as given otherwise.
    func prepared(_ floats: UnsafeBufferPointer<Float>) throws -> [Float] {
        let rows = try validate(floats)
        var out = Array(floats)
        if metric == .cosine {
            out.withUnsafeMutableBufferPointer { p in
                for r in 0..<rows { normalize(p.baseAddress! + r * dimension, dimension) }
            }
        }
        return out
    }

    /// Calls body with the rows ready to store (normalized copies under cosine, the
    /// given memory otherwise). Call `validate` first.
    func withPrepared<T>(_ floats: UnsafeBufferPointer<Float>, _ body: (UnsafePointer<Float>) throws -> T) throws -> T {
        if metric == .cosine {
            let copy = try prepared(floats)
            return try copy.withUnsafeBufferPointer { try body($0.baseAddress!) }
        }
        return try body(floats.baseAddress!)
    }

    /// A query ready to score: checked, and normalized under cosine.
    func query(_ q: [Float]) throws -> [Float] {
        guard q.count == dimension else { throw EngineError.dimensionMismatch(got: q.count, expected: dimension) }
        return try q.withUnsafeBufferPointer { try prepared($0) }
    }
}

/// Scales n floats at p to unit length (left alone if all zero).
func normalize(_ p: UnsafeMutablePointer<Float>, _ n: Int) {
    let norm = vk_dot(p, p, n).squareRoot()
    guard norm > 0 else { return }
    let inv = 1 / norm
    for i in 0..<n { p[i] *= inv }
}
