/// What index to build and its construction-time knobs, with defaults. Decodes from the
/// JSON of a collection's `"index"` object (`{"type":"hnsw","m":16,...}`); absent keys
/// take the defaults below. `ALGO_PARAMS.md` explains every knob.
public struct IndexSpec: Sendable, Codable, Equatable {
    public var kind: IndexKind
    /// IVF: number of inverted lists (k-means centroids). nil = about 4·√n of the vectors
    /// the index is trained on, rounded to a multiple of 100 above 1000, at least 1.
    public var nlist: Int?
    /// IVF: lists scanned per search unless the call says otherwise.
    public var nprobe: Int
    /// IVF_PQ: sub-spaces of the product quantizer (bytes per code); must divide the
    /// dimension. nil = about dimension/8 (8 dimensions per byte, as FAISS's PQ{d/8}x8).
    public var pqM: Int?
    /// IVF_PQ: re-rank the best k × refine PQ candidates with the full-precision vectors
    /// unless the call says otherwise; 0 or 1 = no re-ranking.
    public var refine: Int
    /// HNSW: links per node on upper layers (2·m on the bottom layer).
    public var m: Int
    /// HNSW: candidate list size while inserting.
    public var efConstruction: Int
    /// HNSW: candidate list size while searching unless the call says otherwise.
    public var efSearch: Int
    /// Seed of every random choice (k-means sample and initial centroids, HNSW levels):
    /// the same seed, data and thread count give the same index.
    public var seed: UInt64
    /// IVF: k-means trains on at most this many sampled vectors per centroid.
    public var trainPointsPerCentroid: Int
    /// IVF: k-means iterations (Lloyd steps).
    public var kmeansIterations: Int
    /// A filtered search whose allow list holds at most this fraction of the live vectors
    /// scans the allowed vectors exactly instead of walking the index.
    public var filterExactFraction: Double
    /// Threads used by build/add; nil = all cores. Searches always use the caller's thread.
    public var buildThreads: Int?

    public init(kind: IndexKind, nlist: Int? = nil, nprobe: Int = 16, pqM: Int? = nil, refine: Int = 10,
                m: Int = 16, efConstruction: Int = 200, efSearch: Int = 64, seed: UInt64 = 42,
                trainPointsPerCentroid: Int = 64, kmeansIterations: Int = 16,
                filterExactFraction: Double = 0.03, buildThreads: Int? = nil) {
        self.kind = kind
        self.nlist = nlist
        self.nprobe = nprobe
        self.pqM = pqM
        self.refine = refine
        self.m = m
        self.efConstruction = efConstruction
        self.efSearch = efSearch
        self.seed = seed
        self.trainPointsPerCentroid = trainPointsPerCentroid
        self.kmeansIterations = kmeansIterations
        self.filterExactFraction = filterExactFraction
        self.buildThreads = buildThreads
    }

    enum CodingKeys: String, CodingKey {
        case kind = "type", nlist, nprobe, pqM = "pq_m", refine, m, efConstruction = "ef_construction"
        case efSearch = "ef_search", seed, trainPointsPerCentroid = "train_points_per_centroid"
        case kmeansIterations = "kmeans_iterations", filterExactFraction = "filter_exact_fraction"
        case buildThreads = "build_threads"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = IndexSpec(kind: try c.decode(IndexKind.self, forKey: .kind))
        self.kind = d.kind
        self.nlist = try c.decodeIfPresent(Int.self, forKey: .nlist)
        self.nprobe = try c.decodeIfPresent(Int.self, forKey: .nprobe) ?? d.nprobe
        self.pqM = try c.decodeIfPresent(Int.self, forKey: .pqM)
        self.refine = try c.decodeIfPresent(Int.self, forKey: .refine) ?? d.refine
        self.m = try c.decodeIfPresent(Int.self, forKey: .m) ?? d.m
        self.efConstruction = try c.decodeIfPresent(Int.self, forKey: .efConstruction) ?? d.efConstruction
        self.efSearch = try c.decodeIfPresent(Int.self, forKey: .efSearch) ?? d.efSearch
        self.seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? d.seed
        self.trainPointsPerCentroid = try c.decodeIfPresent(Int.self, forKey: .trainPointsPerCentroid)
            ?? d.trainPointsPerCentroid
        self.kmeansIterations = try c.decodeIfPresent(Int.self, forKey: .kmeansIterations) ?? d.kmeansIterations
        self.filterExactFraction = try c.decodeIfPresent(Double.self, forKey: .filterExactFraction)
            ?? d.filterExactFraction
        self.buildThreads = try c.decodeIfPresent(Int.self, forKey: .buildThreads)
    }

    /// Encodes every knob except buildThreads, which belongs to the machine doing the
    /// build, not to the index (so files built with different thread counts are equal).
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(kind, forKey: .kind)
        try c.encodeIfPresent(nlist, forKey: .nlist)
        try c.encode(nprobe, forKey: .nprobe)
        try c.encodeIfPresent(pqM, forKey: .pqM)
        try c.encode(refine, forKey: .refine)
        try c.encode(m, forKey: .m)
        try c.encode(efConstruction, forKey: .efConstruction)
        try c.encode(efSearch, forKey: .efSearch)
        try c.encode(seed, forKey: .seed)
        try c.encode(trainPointsPerCentroid, forKey: .trainPointsPerCentroid)
        try c.encode(kmeansIterations, forKey: .kmeansIterations)
        try c.encode(filterExactFraction, forKey: .filterExactFraction)
    }

    /// Largest nlist accepted.
    public static let maxNlist = 1 << 20

    /// Checks every knob that applies to `kind` against its range for vectors of `dimension`
    /// components; knobs of other index types are ignored (an HNSW spec may carry a `pq_m`).
    /// Throws `EngineError.invalidParameter` naming the knob and the limit.
    public func validate(dimension: Int) throws {
        func bad(_ s: String) -> EngineError { .invalidParameter(s) }
        guard (1...maxDimension).contains(dimension) else {
            throw bad("dimension \(dimension) is out of range; it must be between 1 and \(maxDimension)")
        }
        let ivf = kind == .ivfFlat || kind == .ivfPQ
        if ivf, let nlist, !(1...Self.maxNlist).contains(nlist) {
            throw bad("nlist \(nlist) is out of range; it must be between 1 and \(Self.maxNlist)")
        }
        guard nprobe >= 1 else { throw bad("nprobe \(nprobe) must be at least 1") }
        if kind == .ivfPQ, let pqM {
            guard pqM >= 1, pqM <= dimension else {
                throw bad("pq_m \(pqM) is out of range; it must be between 1 and the dimension \(dimension)")
            }
            guard dimension % pqM == 0 else { throw bad("pq_m \(pqM) does not divide the dimension \(dimension)") }
        }
        guard (0...1000).contains(refine) else { throw bad("refine \(refine) must be between 0 and 1000") }
        guard (2...256).contains(m) else { throw bad("m \(m) is out of range; it must be between 2 and 256") }
        guard (1...100_000).contains(efConstruction) else {
            throw bad("ef_construction \(efConstruction) must be between 1 and 100000")
        }
        guard (1...100_000).contains(efSearch) else { throw bad("ef_search \(efSearch) must be between 1 and 100000") }
        guard (1...256).contains(trainPointsPerCentroid) else {
            throw bad("train_points_per_centroid \(trainPointsPerCentroid) must be between 1 and 256")
        }
        guard (1...100).contains(kmeansIterations) else {
            throw bad("kmeans_iterations \(kmeansIterations) must be between 1 and 100")
        }
        guard (0...1).contains(filterExactFraction) else {
            throw bad("filter_exact_fraction \(filterExactFraction) must be between 0 and 1")
        }
        if let buildThreads, !(1...1024).contains(buildThreads) {
            throw bad("build_threads \(buildThreads) must be between 1 and 1024")
        }
    }

    /// The pq_m used for `dimension`: the given one, or the smallest divisor of the
    /// dimension that is at least dimension/8.
    public func resolvedPQM(dimension: Int) -> Int {
        if let pqM { return pqM }
        let target = max(1, (dimension + 7) / 8)
        return (target...dimension).first { dimension % $0 == 0 } ?? dimension
    }

    /// The nlist used for an index trained on `trainingCount` vectors.
    public func resolvedNlist(trainingCount: Int) -> Int {
        if let nlist { return nlist }
        let raw = 4 * Double(trainingCount).squareRoot()
        let rounded = raw >= 1000 ? (raw / 100).rounded() * 100 : raw.rounded()
        return max(1, min(Int(rounded), max(1, trainingCount)))
    }

    /// Threads used by builds.
    var threadCount: Int { max(1, buildThreads ?? SystemInfo.activeProcessorCount) }
}
