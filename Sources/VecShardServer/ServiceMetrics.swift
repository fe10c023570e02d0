import Atomics
import CoreMetrics
import NIOConcurrencyHelpers
import Prometheus
import VecShardHTTP
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The service's metrics: a Prometheus registry owned by this instance (so several services in
/// one process, as in tests, do not share counters) plus the HTTP request metrics.
///
/// The request metrics — `vecshard_http_requests_total` (counter) and
/// `vecshard_http_request_duration_seconds` (histogram), labelled by method, route pattern and
/// status — are recorded for every request, probes included, often on an event loop. So each
/// thread counts into cells of its own (no lock, no shared cache line, no hashing of strings) and
/// a scrape adds up every thread's cells. They are rendered exactly as the registry renders a
/// counter and a duration histogram (same names, labels, buckets and number formats), after the
/// registry's own metrics (none unless added through `factory`).
public final class ServiceMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    public let factory: PrometheusMetricsFactory

    private static let requestsName = "vecshard_http_requests_total"
    private static let durationName = "vecshard_http_request_duration_seconds"

    /// Histogram bucket bounds: as durations (for their exposition text) and in whole nanoseconds,
    /// rounded down, for recording (a whole number of nanoseconds `v` is at most a bound `b`
    /// exactly when it is at most `b` rounded down).
    private let bucketBounds: [Duration]
    private let bucketNanoseconds: [Int64]
    /// Cells per series in a `RequestShard`: one per bucket, one for +Inf, one for the sum.
    private let cellsPerSeries: Int

    private struct SeriesKey: Hashable {
        var method: String
        var route: String
        var status: Int
    }

    /// Every series seen (numbered in order of appearance) and every thread's shard.
    private struct Catalog {
        var indexByKey: [SeriesKey: Int] = [:]
        /// Per series, its label set as rendered: `method="GET",route="/healthz",status="200"`.
        var labels: [[UInt8]] = []
        var shards: [RequestShard] = []
    }

    private let catalog = NIOLockedValueBox(Catalog())
    /// Per thread, that thread's shard of this instance, unretained (the catalog owns every
    /// shard). A plain pthread key: NIO's ThreadSpecificVariable adds two dynamic casts per read.
    /// A key created after this one is deleted reads as empty on every thread (POSIX), so a
    /// stale pointer is never seen.
    private let shardKey: pthread_key_t

    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // Request latencies of a vector service sit between 100 µs and a few seconds.
        factory.defaultDurationHistogramBuckets = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2.5),
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
            .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(10),
        ]
        self.factory = factory
        bucketBounds = factory.defaultDurationHistogramBuckets
        bucketNanoseconds = bucketBounds.map { bound in
            let (seconds, attoseconds) = bound.components
            return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        }
        cellsPerSeries = bucketBounds.count + 2
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, nil) == 0, "out of thread-specific keys")
        shardKey = key
    }

    deinit {
        pthread_key_delete(shardKey)
    }

    /// Counts a finished request and records its latency, by method, route pattern and status.
    public func record(_ outcome: RequestOutcome) {
        let shard = pthread_getspecific(shardKey).map { Unmanaged<RequestShard>.fromOpaque($0).takeUnretainedValue() }
            ?? makeLocalShard()
        let series: Int
        if let routeID = outcome.routeID, (0..<(1 << 16)).contains(outcome.status) {
            // Matched routes: one integer look-up in this thread's own table.
            let key = routeID << 16 | outcome.status
            if let known = shard.series(forRouteKey: key) {
                series = known
            } else {
                series = seriesIndex(outcome)
                shard.remember(routeKey: key, series: series)
            }
        } else {
            series = seriesIndex(outcome)
        }
        let nanoseconds = outcome.seconds * 1e9
        let value = nanoseconds < Double(Int64.max) ? Int64(nanoseconds) : Int64.max
        var bucket = 0
        while bucket < bucketNanoseconds.count && bucketNanoseconds[bucket] < value { bucket += 1 }
        shard.add(series: series, bucket: bucket, nanoseconds: value)
    }

    /// Prometheus text exposition format.
    public func exposition() -> [UInt8] {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(16 * 1024)
        registry.emit(into: &buffer)
        let (labels, shards) = catalog.withLockedValue { ($0.labels, $0.shards) }
        guard !labels.isEmpty else { return buffer }
        var totals = [UInt64](repeating: 0, count: labels.count * cellsPerSeries)
        for shard in shards { shard.accumulate(into: &totals, series: labels.count) }

        let sumCell = cellsPerSeries - 1
        func count(_ series: Int) -> UInt64 {
            var n: UInt64 = 0
            for cell in 0..<sumCell { n &+= totals[series * cellsPerSeries + cell] }
            return n
        }
        buffer.append(contentsOf: "# TYPE \(Self.requestsName) counter\n".utf8)
        for (series, labelSet) in labels.enumerated() {
            buffer.append(contentsOf: Self.requestsName.utf8)
            buffer.append(UInt8(ascii: "{"))
            buffer.append(contentsOf: labelSet)
            buffer.append(contentsOf: "} \(count(series))\n".utf8)
        }
        let boundTexts = bucketBounds.map(\.bucketRepresentation)
        buffer.append(contentsOf: "# TYPE \(Self.durationName) histogram\n".utf8)
        for (series, labelSet) in labels.enumerated() {
            let base = series * cellsPerSeries
            var cumulative: UInt64 = 0
            for (bucket, bound) in boundTexts.enumerated() {
                cumulative &+= totals[base + bucket]
                buffer.append(contentsOf: "\(Self.durationName)_bucket{".utf8)
                buffer.append(contentsOf: labelSet)
                buffer.append(contentsOf: ",le=\"\(bound)\"} \(cumulative)\n".utf8)
            }
            let total = count(series)
            buffer.append(contentsOf: "\(Self.durationName)_bucket{".utf8)
            buffer.append(contentsOf: labelSet)
            buffer.append(contentsOf: ",le=\"+Inf\"} \(total)\n".utf8)
            let sum = Duration.nanoseconds(Int64(truncatingIfNeeded: totals[base + sumCell]))
            buffer.append(contentsOf: "\(Self.durationName)_sum{".utf8)
            buffer.append(contentsOf: labelSet)
            buffer.append(contentsOf: "} \(sum.bucketRepresentation)\n".utf8)
            buffer.append(contentsOf: "\(Self.durationName)_count{".utf8)
            buffer.append(contentsOf: labelSet)
            buffer.append(contentsOf: "} \(total)\n".utf8)
        }
        return buffer
    }

    private func makeLocalShard() -> RequestShard {
        let shard = RequestShard(cellsPerSeries: cellsPerSeries)
        catalog.withLockedValue { $0.shards.append(shard) }
        pthread_setspecific(shardKey, Unmanaged.passUnretained(shard).toOpaque())
        return shard
    }

    /// The series of this method, route and status, numbered on first appearance.
    private func seriesIndex(_ outcome: RequestOutcome) -> Int {
        let key = SeriesKey(method: outcome.method, route: outcome.route, status: outcome.status)
        return catalog.withLockedValue { catalog in
            if let index = catalog.indexByKey[key] { return index }
            let index = catalog.labels.count
            catalog.indexByKey[key] = index
            catalog.labels.append(Self.renderLabels([("method", key.method), ("route", key.route), ("status", String(key.status))]))
            return index
        }
    }

    /// `name="value",...` with backslash, double quote and line feed escaped, as the exposition
    /// format requires.
    private static func renderLabels(_ labels: [(String, String)]) -> [UInt8] {
        var out: [UInt8] = []
        for (i, (name, value)) in labels.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: name.utf8)
            out.append(contentsOf: "=\"".utf8)
            for byte in value.utf8 {
                switch byte {
                case UInt8(ascii: "\\"): out.append(contentsOf: #"\\"#.utf8)
                case UInt8(ascii: "\""): out.append(contentsOf: #"\""#.utf8)
                case UInt8(ascii: "\n"): out.append(contentsOf: #"\n"#.utf8)
                default: out.append(byte)
                }
            }
            out.append(UInt8(ascii: "\""))
        }
        return out
    }
}

/// One thread's request counts, per series: a count per histogram bucket (not cumulative), one
/// for +Inf, and the sum of nanoseconds.
///
/// Only the owning thread writes the cells, with an atomic load and an atomic store (no
/// read-modify-write, no lock: there is no other writer); a scrape on another thread reads them
/// with atomic loads. Cells live in blocks that never move once created, so adding a block (under
/// `lock`, which the scrape takes to list the blocks) never invalidates a cell being read. A scrape
/// may see the sum of a request without its count or the reverse, never a torn value.
final class RequestShard: @unchecked Sendable {
    private typealias Cell = UnsafeAtomic<UInt64>.Storage

    private static let seriesPerBlock = 16
    private let cellsPerSeries: Int
    private let lock = NIOLock()
    /// Appended by the owner under `lock`; the owner reads it without the lock (no other writer).
    private var blocks: [UnsafeMutablePointer<Cell>] = []
    /// Route key (`routeID << 16 | status`) to series index; owner thread only. The last key
    /// looked up is kept apart: consecutive requests mostly hit the same route.
    private var seriesByRouteKey: [Int: Int] = [:]
    private var lastRouteKey = -1
    private var lastSeries = 0

    init(cellsPerSeries: Int) {
        self.cellsPerSeries = cellsPerSeries
    }

    deinit {
        for block in blocks {
            block.deinitialize(count: Self.seriesPerBlock * cellsPerSeries)
            block.deallocate()
        }
    }

    func series(forRouteKey key: Int) -> Int? {
        if key == lastRouteKey { return lastSeries }
        guard let series = seriesByRouteKey[key] else { return nil }
        lastRouteKey = key
        lastSeries = series
        return series
    }

    func remember(routeKey key: Int, series: Int) { seriesByRouteKey[key] = series }

    /// Owner thread only.
    func add(series: Int, bucket: Int, nanoseconds: Int64) {
        let block = series / Self.seriesPerBlock
        if block >= blocks.count { addBlocks(upTo: block) }
        let cells = blocks[block] + (series % Self.seriesPerBlock) * cellsPerSeries
        Self.bump(cells + bucket, by: 1)
        Self.bump(cells + cellsPerSeries - 1, by: UInt64(truncatingIfNeeded: nanoseconds))
    }

    /// Adds this shard's cells of series `0..<series` to `totals` (laid out like the blocks).
    func accumulate(into totals: inout [UInt64], series: Int) {
        let blocks = lock.withLock { self.blocks }
        for s in 0..<series {
            let block = s / Self.seriesPerBlock
            guard block < blocks.count else { break }
            let cells = blocks[block] + (s % Self.seriesPerBlock) * cellsPerSeries
            for c in 0..<cellsPerSeries {
                totals[s * cellsPerSeries + c] &+= UnsafeAtomic<UInt64>(at: cells + c).load(ordering: .relaxed)
            }
        }
    }

    @inline(__always)
    private static func bump(_ cell: UnsafeMutablePointer<Cell>, by amount: UInt64) {
        let atomic = UnsafeAtomic<UInt64>(at: cell)
        atomic.store(atomic.load(ordering: .relaxed) &+ amount, ordering: .relaxed)
    }

    private func addBlocks(upTo block: Int) {
        let count = Self.seriesPerBlock * cellsPerSeries
        lock.withLock {
            while blocks.count <= block {
                let cells = UnsafeMutablePointer<Cell>.allocate(capacity: count)
                cells.initialize(repeating: Cell(0), count: count)
                blocks.append(cells)
            }
        }
    }
}
