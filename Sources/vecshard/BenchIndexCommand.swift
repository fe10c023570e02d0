import ArgumentParser
import VecShardBench
import VecShardEngine

/// `vecshard bench-index`: builds one engine index over a gen.py dataset and sweeps a
/// search knob, printing one JSON line per point (see VecShardBench.IndexBenchmark).
public struct BenchIndexCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "bench-index",
        abstract: "Measure an engine index (recall@10, single-thread QPS, build time) on a gen.py dataset.",
        discussion: """
            Reads base.fvecs, query.fvecs and gt.ivecs (and, with --filtered, categories.u8,
            query_category.u8, gt_filtered.ivecs) from --data, builds the index with all cores,
            then issues the queries one at a time on one thread as ../shared/bench/anchors.py
            does (warm-up, best of --repeats passes). Example:
              vecshard bench-index --data /tmp/vecshard-data/gmm-1m-128-l2 --index hnsw --sweep ef=16,32,64,128
            """)

    @Option(help: "Dataset folder written by ../shared/bench/gen.py.")
    var data: String

    @Option(help: "Index type: flat, ivf_flat, ivf_pq or hnsw.")
    var index: String

    @Option(help: "HNSW: links per node (2m on layer 0).")
    var m: Int = 16

    @Option(name: .customLong("ef-construction"), help: "HNSW: candidate list size while inserting.")
    var efConstruction: Int = 200

    @Option(help: "IVF: number of lists (default about 4·√n).")
    var nlist: Int?

    @Option(name: .customLong("pq-m"), help: "IVF_PQ: sub-spaces (bytes per code); default dimension/8.")
    var pqM: Int?

    @Option(help: "IVF_PQ: re-rank k × refine candidates exactly (0 or 1: off).")
    var refine: Int?

    @Option(help: "IVF: lists probed when not swept.")
    var nprobe: Int?

    @Option(help: "HNSW: search candidate list size when not swept.")
    var ef: Int?

    @Option(help: "Threads for the build (default: all cores). Searches always use one.")
    var threads: Int?

    @Option(help: "Search knob to sweep: ef=16,32,64 or nprobe=... or refine=...")
    var sweep: String?

    @Option(help: "Use only the first N queries.")
    var queries: Int?

    @Option(help: "Timed passes per sweep point; the fastest is kept.")
    var repeats: Int = 3

    @Option(name: .customLong("train-points"), help: "IVF: k-means sample size per centroid.")
    var trainPoints: Int = 64

    @Option(name: .customLong("kmeans-iterations"), help: "IVF: k-means iterations.")
    var kmeansIterations: Int = 16

    @Option(help: "Seed of the build's random choices.")
    var seed: UInt64 = 42

    @Flag(help: "Also run the filtered queries (one category each) against gt_filtered.ivecs.")
    var filtered = false

    @Flag(help: "Write the index to disk and search the copy loaded back (IVF_PQ maps its vectors).")
    var reload = false

    @Option(help: "Also compare index walk and exact scan under random filters of these selectivities, e.g. 0.01,0.03,0.1.")
    var selectivity: String?

    @Option(help: "Keep the built index in this file.")
    var save: String?

    @Option(help: "Search the index in this file (written by --save) instead of building one.")
    var load: String?

    @Option(help: "Folder for the temporary index file (its size is reported).")
    var scratch: String = "/tmp"

    public init() {}

    public func run() throws {
        guard let kind = IndexKind(rawValue: index) else {
            throw ValidationError("--index \(index): expected one of \(IndexKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let spec = IndexSpec(kind: kind, nlist: nlist, pqM: pqM, refine: refine ?? 10, m: m, efConstruction: efConstruction,
                             seed: seed, trainPointsPerCentroid: trainPoints, kmeansIterations: kmeansIterations,
                             buildThreads: threads)
        var config = IndexBenchmark.Configuration(dataPath: data, spec: spec, nprobe: nprobe, ef: ef, refine: refine,
                                                  queries: queries, repeats: repeats, filtered: filtered, reload: reload,
                                                  scratch: scratch)
        config.savePath = save
        config.loadPath = load
        if let selectivity {
            config.selectivities = try selectivity.split(separator: ",").map {
                guard let f = Double($0), f > 0, f <= 1 else { throw ValidationError("--selectivity: \($0) is not in (0, 1]") }
                return f
            }
        }
        if let sweep {
            (config.sweepName, config.sweepValues) = try IndexBenchmark.parseSweep(sweep)
        }
        try IndexBenchmark(config).run { line in
            print(line)
            fflush(nil)  // one line per sweep point, visible as soon as it is measured
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
