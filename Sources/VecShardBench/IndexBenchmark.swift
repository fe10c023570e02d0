#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VecShardEngine

/// Measures one index on a gen.py dataset the way ../shared/bench/anchors.py measures
/// the anchor libraries: build with all cores (timed), then for each sweep point issue
/// the queries one at a time on one thread (a warm-up of up to 100 queries, then
/// `repeats` timed passes, the fastest kept) and score recall@10 against gt.ivecs.
/// Prints one JSON line per sweep point.
public struct IndexBenchmark {
    public struct Configuration: Sendable {
        public var dataPath: String
        public var spec: IndexSpec
        /// The search knob swept ("ef", "nprobe", "refine" or "none") and its values.
        public var sweepName: String
        public var sweepValues: [Int]
        /// Fixed search knobs besides the swept one.
        public var nprobe: Int?
        public var ef: Int?
        public var refine: Int?
        public var queries: Int?
        public var repeats: Int
        public var warmup: Int
        /// Also run the filtered queries (category of query_category.u8, scored against gt_filtered.ivecs).
        public var filtered: Bool
        /// Write the index to this folder and search the copy loaded back (IVF_PQ then
        /// reads its re-ranking vectors from the mapped file, as storage does).
        public var reload: Bool
        /// Folder for the temporary index file used to measure its size.
        public var scratch: String
        /// Also measure filters allowing these fractions of the vectors (uniformly random
        /// ids): the index walk against the exact scan of the allowed ids, to place
        /// `filterExactFraction`.
        public var selectivities: [Double] = []
        /// Load the index from this file instead of building it (build_s is then null).
        public var loadPath: String?
        /// Keep the built index in this file (to sweep it again later with loadPath).
        public var savePath: String?

        public init(dataPath: String, spec: IndexSpec, sweepName: String = "none", sweepValues: [Int] = [],
                    nprobe: Int? = nil, ef: Int? = nil, refine: Int? = nil, queries: Int? = nil, repeats: Int = 3,
                    warmup: Int = 100, filtered: Bool = false, reload: Bool = false, scratch: String = "/tmp") {
            self.dataPath = dataPath
            self.spec = spec
            self.sweepName = sweepName
            self.sweepValues = sweepValues
            self.nprobe = nprobe
            self.ef = ef
            self.refine = refine
            self.queries = queries
            self.repeats = repeats
            self.warmup = warmup
            self.filtered = filtered
            self.reload = reload
            self.scratch = scratch
        }
    }

    /// Figures of one pass over the queries.
    public struct Pass: Sendable {
        public var recall: Double
        public var qps: Double
        public var p50ms: Double
        public var p99ms: Double
    }

    public let configuration: Configuration
    public init(_ configuration: Configuration) { self.configuration = configuration }

    /// Parses "ef=16,32,64" into ("ef", [16, 32, 64]).
    public static func parseSweep(_ text: String) throws -> (String, [Int]) {
        let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2, ["ef", "nprobe", "refine"].contains(parts[0]) else {
            throw BenchError("--sweep \(text): expected ef=..., nprobe=... or refine=... with comma-separated integers")
        }
        let values = try parts[1].split(separator: ",").map { v -> Int in
            guard let i = Int(v.trimmingCharacters()), i > 0 else { throw BenchError("--sweep \(text): \(v) is not a positive integer") }
            return i
        }
        guard !values.isEmpty else { throw BenchError("--sweep \(text): no values") }
        return (parts[0], values)
    }

    /// Runs the benchmark; `emit` receives each JSON line (and progress lines prefixed "#").
    public func run(emit: (String) -> Void) throws {
        let c = configuration
        let data = try BenchDataset(path: c.dataPath, filtered: c.filtered)
        guard let metric = DistanceMetric(rawValue: data.metric == "cosine" ? "cosine" : data.metric) else {
            throw BenchError("unknown metric \(data.metric) in meta.json")
        }
        emit("# \(data.count) x \(data.dimension) \(metric), \(data.queryCount) queries, kernels \(VectorKernels.active.name)")
        var index: any VectorIndex
        var buildSeconds = Double.nan
        if let loadPath = c.loadPath {
            index = try loadIndex(from: loadPath)
            guard index.count == data.count, index.metric == metric, index.kind == c.spec.kind else {
                throw BenchError("\(loadPath) holds a \(index.kind.rawValue) \(index.metric) index of \(index.count) vectors, not this dataset's")
            }
        } else {
            index = try makeIndex(spec: c.spec, metric: metric, dimension: data.dimension)
            let t0 = Clock.now()
            _ = try index.build(from: data.base)
            buildSeconds = Clock.now() - t0
        }
        let file = c.savePath ?? c.scratch + "/vecshard-bench-index-\(getpid())"
        try index.write(to: file)
        var st = stat()
        stat(file, &st)
        let indexBytes = Int(st.st_size)
        if c.reload { index = try loadIndex(from: file) }
        if c.savePath == nil { unlink(file) }
        let residentBytes = index.memoryBytes
        emit("# \(c.loadPath == nil ? "built in \(String(format2: buildSeconds)) s" : "loaded"), file \(indexBytes / 1_048_576) MiB, resident \(residentBytes / 1_048_576) MiB")

        let nq = min(c.queries ?? data.queryCount, data.queryCount)
        let allowLists: [AllowList] = c.filtered ? Self.allowLists(data) : []
        let points = c.sweepValues.isEmpty ? [nil] : c.sweepValues.map { Optional($0) }
        for value in points {
            var params = SearchParameters(k: 10, nprobe: c.nprobe, ef: c.ef, refine: c.refine)
            var setting: [(String, Int)] = []
            if let value {
                switch c.sweepName {
                case "ef": params.ef = value
                case "nprobe": params.nprobe = value
                default: params.refine = value
                }
                setting.append((c.sweepName, value))
            }
            if c.sweepName != "nprobe", let v = params.nprobe { setting.append(("nprobe", v)) }
            if c.sweepName != "ef", let v = params.ef { setting.append(("ef", v)) }
            if c.sweepName != "refine", let v = params.refine { setting.append(("refine", v)) }
            let single = try measure(index, data, params, nq: nq, filtered: nil)
            var line = "{\"index\":\"\(c.spec.kind.rawValue)\",\"params\":{"
            line += setting.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",")
            line += "},\"build\":{" + Self.buildParams(c.spec, resolved: index.spec).joined(separator: ",") + "}"
            line += ",\"recall_at_10\":\(Self.fmt(single.recall)),\"qps\":\(Self.fmt(single.qps))"
            line += ",\"p50_ms\":\(Self.fmt(single.p50ms)),\"p99_ms\":\(Self.fmt(single.p99ms))"
            line += ",\"build_s\":\(Self.fmt(buildSeconds)),\"bytes_per_vector\":\(Self.fmt(Double(residentBytes) / Double(data.count)))"
            line += ",\"index_bytes\":\(indexBytes),\"resident_bytes\":\(residentBytes),\"queries\":\(nq)"
            line += ",\"build_threads\":\(c.spec.buildThreads ?? Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))"
            if c.filtered {
                let f = try measure(index, data, params, nq: nq, filtered: allowLists)
                line += ",\"filtered\":{\"recall_at_10\":\(Self.fmt(f.recall)),\"qps\":\(Self.fmt(f.qps))"
                line += ",\"p50_ms\":\(Self.fmt(f.p50ms)),\"p99_ms\":\(Self.fmt(f.p99ms))}"
            }
            line += "}"
            emit(line)
            for fraction in c.selectivities {
                emit(try selectivityLine(index, data, params, nq: nq, fraction: fraction, setting: setting))
            }
        }
    }

    /// Filter of a given selectivity: the index walk (never the exact fallback) against
    /// the exact scan of the allowed ids; recall of the walk against the exact answer.
    func selectivityLine(_ index: any VectorIndex, _ data: BenchDataset, _ base: SearchParameters, nq: Int,
                         fraction: Double, setting: [(String, Int)]) throws -> String {
        var list = AllowList(capacity: data.count)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15 &* UInt64(fraction * 1e6 + 1)
        let threshold = UInt64(fraction * Double(UInt64.max))
        for id in 0..<data.count {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            var z = state
            z = (z ^ (z >> 33)) &* 0xff51afd7ed558ccd
            z ^= z >> 33
            if z < threshold { list.insert(UInt32(id)) }
        }
        var walk = base, exact = base
        walk.filter = list
        walk.filterExactFraction = 0
        exact.filter = list
        exact.exact = true
        let dim = data.dimension
        let queries = (0..<nq).map { Array(data.queries[($0 * dim)..<(($0 + 1) * dim)]) }
        func timed(_ p: SearchParameters) throws -> (Double, [[Neighbor]]) {
            for i in 0..<min(configuration.warmup, nq) { _ = try index.search(queries[i], parameters: p) }
            var best = 0.0
            var found: [[Neighbor]] = []
            for _ in 0..<max(1, configuration.repeats) {
                let t = Clock.now()
                found = try queries.map { try index.search($0, parameters: p) }
                best = max(best, Double(nq) / (Clock.now() - t))
            }
            return (best, found)
        }
        let (exactQPS, truth) = try timed(exact)
        let (walkQPS, found) = try timed(walk)
        var hits = 0.0
        for (f, t) in zip(found, truth) {
            let ids = Set(t.prefix(10).map(\.id))
            hits += Double(f.prefix(10).filter { ids.contains($0.id) }.count) / Double(max(1, ids.count))
        }
        var line = "{\"index\":\"\(configuration.spec.kind.rawValue)\",\"params\":{"
        line += setting.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",")
        line += "},\"selectivity\":\(Self.fmt(fraction)),\"allowed\":\(list.count)"
        line += ",\"walk\":{\"recall_at_10\":\(Self.fmt(hits / Double(nq))),\"qps\":\(Self.fmt(walkQPS))}"
        line += ",\"exact\":{\"qps\":\(Self.fmt(exactQPS))}}"
        return line
    }

    static func buildParams(_ spec: IndexSpec, resolved: IndexSpec) -> [String] {
        switch spec.kind {
        case .flat: return []
        case .ivfFlat: return ["\"nlist\":\(resolved.nlist ?? 0)"]
        case .ivfPQ: return ["\"nlist\":\(resolved.nlist ?? 0)", "\"pq_m\":\(resolved.pqM ?? 0)"]
        case .hnsw: return ["\"m\":\(spec.m)", "\"ef_construction\":\(spec.efConstruction)"]
        }
    }

    /// One allow list per category value.
    static func allowLists(_ data: BenchDataset) -> [AllowList] {
        let maxCategory = Int(data.categories.max() ?? 0)
        var lists = (0...maxCategory).map { _ in AllowList(capacity: data.count) }
        for (id, c) in data.categories.enumerated() { lists[Int(c)].insert(UInt32(id)) }
        return lists
    }

    /// Warm-up, then `repeats` timed passes over the first nq queries (the fastest kept).
    func measure(_ index: any VectorIndex, _ data: BenchDataset, _ base: SearchParameters, nq: Int,
                 filtered lists: [AllowList]?) throws -> Pass {
        let dim = data.dimension
        let queries = (0..<nq).map { Array(data.queries[($0 * dim)..<(($0 + 1) * dim)]) }
        let params: [SearchParameters] = (0..<nq).map { i in
            var p = base
            if let lists { p.filter = lists[Int(data.queryCategories[i])] }
            return p
        }
        for i in 0..<min(configuration.warmup, nq) { _ = try index.search(queries[i], parameters: params[i]) }
        var best: Pass?
        var latencies = [Double](repeating: 0, count: nq)
        var found = [[Neighbor]](repeating: [], count: nq)
        for _ in 0..<max(1, configuration.repeats) {
            let start = Clock.now()
            for i in 0..<nq {
                let s = Clock.now()
                found[i] = try index.search(queries[i], parameters: params[i])
                latencies[i] = Clock.now() - s
            }
            let wall = Clock.now() - start
            let sorted = latencies.sorted()
            let pass = Pass(recall: 0, qps: Double(nq) / wall, p50ms: Self.percentile(sorted, 50) * 1e3,
                            p99ms: Self.percentile(sorted, 99) * 1e3)
            if best == nil || pass.qps > best!.qps { best = pass }
        }
        let truth = lists == nil ? data.groundTruth : data.groundTruthFiltered
        best!.recall = Self.recallAt10(found, truth: truth, width: data.gtWidth)
        return best!
    }

    /// numpy's default (linear) percentile of sorted values.
    static func percentile(_ sorted: [Double], _ p: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let x = p / 100 * Double(sorted.count - 1)
        let lo = Int(x), hi = min(lo + 1, sorted.count - 1)
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (x - Double(lo))
    }

    /// Mean fraction of each query's true top 10 (−1 pads excluded) among its first 10
    /// results, as common.recall_at_k computes it.
    static func recallAt10(_ found: [[Neighbor]], truth: [Int32], width: Int) -> Double {
        var total = 0.0
        for (q, result) in found.enumerated() {
            let gt = truth[(q * width)..<(q * width + min(10, width))].filter { $0 >= 0 }
            let got = Set(result.prefix(10).map { Int32($0.id) })
            total += Double(gt.filter { got.contains($0) }.count) / Double(max(gt.count, 1))
        }
        return total / Double(max(found.count, 1))
    }

    static func fmt(_ x: Double) -> String {
        guard x.isFinite else { return "null" }
        return String(format2: x, digits: x >= 100 ? 1 : 5)
    }
}

/// Monotonic seconds.
enum Clock {
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}

extension String {
    /// A fixed-point rendering without Foundation.
    init(format2 x: Double, digits: Int = 2) {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let r = (abs(x) * scale).rounded()
        let whole = Int(r / scale)
        var frac = String(Int(r.truncatingRemainder(dividingBy: scale)))
        while frac.count < digits { frac = "0" + frac }
        self = (x < 0 ? "-" : "") + "\(whole)" + (digits > 0 ? "." + frac : "")
    }

    func trimmingCharacters() -> String { String(self.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed()) }
}

extension Substring {
    func trimmingCharacters() -> String { String(self).trimmingCharacters() }
}
