import VecShardHTTP
import VecShardSchema
import VecShardShardAPI

/// Builds JSON response bodies directly into a byte array (no intermediate objects): search
/// answers are the hot path.
struct JSONWriter {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int = 1024) { bytes.reserveCapacity(capacity) }

    mutating func raw(_ s: StaticString) {
        s.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    mutating func string(_ s: String) {
        var escaped = ""
        JSONString.append(s, to: &escaped)
        bytes.append(contentsOf: escaped.utf8)
    }

    mutating func number(_ v: Int) { bytes.append(contentsOf: String(v).utf8) }
    mutating func number(_ v: UInt64) { bytes.append(contentsOf: String(v).utf8) }
    /// Shortest representation that reads back to the same float. JSON has no infinities: a
    /// score that overflowed float32 (vectors near its range) is written as the largest finite
    /// value of its sign, NaN as the lowest score.
    mutating func number(_ v: Float) {
        let finite = v.isNaN ? -Float.greatestFiniteMagnitude : max(-Float.greatestFiniteMagnitude, min(Float.greatestFiniteMagnitude, v))
        bytes.append(contentsOf: finite.description.utf8)
    }

    mutating func number(_ v: Double) {
        let finite = v.isNaN ? 0 : max(-Double.greatestFiniteMagnitude, min(Double.greatestFiniteMagnitude, v))
        bytes.append(contentsOf: finite.description.utf8)
    }
    mutating func bool(_ v: Bool) { raw(v ? "true" : "false") }

    mutating func key(_ k: String) {
        string(k)
        raw(":")
    }

    mutating func floats(_ values: [Float]) {
        raw("[")
        for (i, v) in values.enumerated() {
            if i > 0 { raw(",") }
            number(v)
        }
        raw("]")
    }

    /// `,"name":value`, a field after the first of an object (`name` needs no escaping).
    mutating func field(_ name: StaticString, _ value: UInt64) {
        raw(",\"")
        raw(name)
        raw("\":")
        number(value)
    }

    mutating func value(_ v: MetadataValue) {
        switch v {
        case .string(let s): string(s)
        case .int(let i): bytes.append(contentsOf: String(i).utf8)
        case .double(let d): number(d)
        case .bool(let b): bool(b)
        }
    }

    mutating func metadata(_ m: Metadata) {
        raw("{")
        for (i, k) in m.keys.sorted().enumerated() {
            if i > 0 { raw(",") }
            key(k)
            value(m[k]!)
        }
        raw("}")
    }

    mutating func point(_ p: Point) {
        raw("{\"id\":")
        string(p.id)
        raw(",\"vector\":")
        floats(p.vector)
        raw(",\"metadata\":")
        metadata(p.metadata)
        raw("}")
    }

    mutating func hits(_ hits: [SearchHit], includeMetadata: Bool, includeVector: Bool) {
        raw("[")
        for (i, h) in hits.enumerated() {
            if i > 0 { raw(",") }
            raw("{\"id\":")
            string(h.id)
            raw(",\"score\":")
            number(h.score)
            if includeMetadata {
                raw(",\"metadata\":")
                metadata(h.metadata)
            }
            if includeVector {
                raw(",\"vector\":")
                floats(h.vector ?? [])
            }
            raw("}")
        }
        raw("]")
    }

    mutating func collection(_ c: CollectionInfo) {
        let schema = c.schema, index = c.schema.index
        let ivf = index.kind == .ivfFlat || index.kind == .ivfPQ
        raw("{\"name\":")
        string(schema.name)
        raw(",\"dimension\":")
        number(schema.dimension)
        raw(",\"metric\":")
        string(schema.metric.rawValue)
        raw(",\"index\":{\"type\":")
        string(index.kind.rawValue)
        if ivf, let nlist = index.nlist, nlist > 0 { raw(",\"nlist\":"); number(nlist) }
        if index.kind == .ivfPQ, let pqM = index.pqM, pqM > 0 { raw(",\"pq_m\":"); number(pqM) }
        raw(",\"m\":"); number(index.m)
        raw(",\"ef_construction\":"); number(index.efConstruction)
        raw(",\"ef_search\":"); number(index.efSearch)
        raw(",\"nprobe\":"); number(index.nprobe)
        raw(",\"refine\":"); number(index.refine)
        raw("}")
        if let shardKey = schema.shardKey, !shardKey.isEmpty {
            raw(",\"shard_key\":")
            string(shardKey)
        }
        for (name, value): (StaticString, UInt64) in [("count", c.count), ("segments", UInt64(c.segments)), ("memory_bytes", c.memoryBytes), ("disk_bytes", c.diskBytes)] {
            field(name, value)
        }
        raw(",\"index_state\":"); string(c.indexBuilding ? "building" : "ready")
        raw("}")
    }

    /// `/admin/shards`: a collection's background work on one shard (`last_error`,
    /// `failed_seals`, `failed_compactions`, `quarantined_points`) and `disk_full`.
    mutating func maintenance(_ c: CollectionInfo) {
        raw("{\"last_error\":")
        if let error = c.maintenanceError, !error.isEmpty { string(error) } else { raw("null") }
        for (name, value): (StaticString, UInt64) in [("failed_seals", c.failedSeals), ("failed_compactions", c.failedCompactions), ("quarantined_points", c.quarantinedPoints)] {
            field(name, value)
        }
        raw(",\"disk_full\":"); raw(c.diskFull ? "true" : "false")
        raw("}")
    }

    /// A collection its shard could not open: `{"name":...,"error":{"code":...,"message":...}}`.
    mutating func refusedCollection(_ c: RefusedCollection) {
        raw("{\"name\":"); string(c.name)
        raw(",\"error\":{\"code\":"); string(c.code)
        raw(",\"message\":"); string(c.message)
        raw("}}")
    }
}
