import VecShardEngine

/// Input checks run before anything is logged, so a record in the WAL always applies.
public enum PointValidation {
    public static func check(id: String) throws(SchemaError) {
        if id.isEmpty { throw SchemaError.invalidPointID(id, reason: "it is empty") }
        let n = id.utf8.count
        if n > PointLimits.maxPointIDBytes {
            throw SchemaError.invalidPointID(id, reason: "\(n) bytes of UTF-8; the limit is \(PointLimits.maxPointIDBytes)")
        }
    }

    public static func check(vector: [Float], schema: CollectionSchema, pointID: String?) throws(SchemaError) {
        guard vector.count == schema.dimension else {
            throw SchemaError.dimensionMismatch(collection: schema.name, got: vector.count, expected: schema.dimension, pointID: pointID)
        }
        // The engine's own check (the one every index applies), so nothing accepted here
        // can be refused when a segment is sealed.
        switch VectorCheck.problem(vector, metric: schema.metric) {
        case nil: return
        case let .nonFinite(c)?: throw SchemaError.nonFiniteComponent(pointID: pointID, component: c)
        case let .componentTooLarge(c, value)?: throw SchemaError.componentTooLarge(pointID: pointID, component: c, value: value)
        case let .noDirection(squaredNorm, allZero)?:
            throw allZero ? SchemaError.zeroVector(pointID: pointID) : SchemaError.vectorWithoutDirection(pointID: pointID, squaredNorm: squaredNorm)
        }
    }

    /// (A bit-level pre-scan, kept for its tests; validation uses `VectorCheck`.)
    /// Whether every component is finite and whether any is non-zero, eight lanes at a
    /// time on the bit patterns: a float is NaN or infinite exactly when its exponent bits
    /// are all ones, and non-zero when any bit but the sign is set.
    public static func scan(_ vector: [Float]) -> (finite: Bool, nonZero: Bool) {
        vector.withUnsafeBytes { raw in
            let n = raw.count / 4
            var exponents = SIMD8<UInt32>(repeating: 0)
            var magnitude = SIMD8<UInt32>(repeating: 0)
            let exponentMask = SIMD8<UInt32>(repeating: 0x7F80_0000)
            let magnitudeMask = SIMD8<UInt32>(repeating: 0x7FFF_FFFF)
            var i = 0
            while i + 8 <= n {
                let bits = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<UInt32>.self)
                exponents = pointwiseMax(exponents, bits & exponentMask)
                magnitude |= bits & magnitudeMask
                i += 8
            }
            var maxExponent = exponents.max()
            var anyBits = magnitude.max()
            while i < n {
                let bits = raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)
                maxExponent = max(maxExponent, bits & 0x7F80_0000)
                anyBits |= bits & 0x7FFF_FFFF
                i += 1
            }
            return (maxExponent != 0x7F80_0000, anyBits != 0)
        }
    }

    public static func check(metadata: Metadata, pointID: String) throws(SchemaError) {
        func bad(_ reason: String) -> SchemaError { .invalidMetadata(pointID: pointID, reason: reason) }
        if metadata.count > PointLimits.maxMetadataFields {
            throw bad("has \(metadata.count) fields; the limit is \(PointLimits.maxMetadataFields)")
        }
        let bytes = metadata.byteCount
        if bytes > PointLimits.maxMetadataBytes {
            throw bad("is \(bytes) bytes (keys and values); the limit is \(PointLimits.maxMetadataBytes) per point")
        }
        for (key, value) in metadata {
            if key.isEmpty { throw bad("has an empty key") }
            if key.utf8.count > PointLimits.maxMetadataKeyBytes {
                throw bad("key '\(key.prefix(32))…' is \(key.utf8.count) bytes; the limit is \(PointLimits.maxMetadataKeyBytes)")
            }
            switch value {
            case let .string(s) where s.utf8.count > PointLimits.maxMetadataStringBytes:
                throw bad("'\(key)' is a string of \(s.utf8.count) bytes; the limit is \(PointLimits.maxMetadataStringBytes)")
            case let .double(d) where !d.isFinite:
                throw bad("'\(key)' is NaN or infinite; numbers must be finite")
            default: break
            }
        }
    }

    public static func check(points: [Point], schema: CollectionSchema) throws(SchemaError) {
        if points.count > PointLimits.maxBatchPoints {
            throw SchemaError.batchTooLarge(count: points.count, limit: PointLimits.maxBatchPoints)
        }
        for p in points {
            try check(id: p.id)
            try check(vector: p.vector, schema: schema, pointID: p.id)
            try check(metadata: p.metadata, pointID: p.id)
        }
    }

    public static func check(filter: MetadataFilter) throws(SchemaError) {
        switch filter {
        case let .field(field, condition):
            for value in condition.values where !value.isFilterable {
                throw SchemaError.invalidFilter("field '\(field)': \(value) is a float; filters take strings, ints and bools")
            }
        case let .all(children):
            for child in children { try check(filter: child) }
        }
    }
}

/// Validation without writing, so that a router can refuse a whole batch before it fans the batch
/// out to several shards (a bad point must change nothing anywhere); storage runs the same
/// checks before it logs a write.
extension CollectionSchema {
    /// Checks a batch exactly as `ShardCollection.upsert` does.
    public func validate(points: [Point]) throws(SchemaError) {
        try PointValidation.check(points: points, schema: self)
    }

    /// Checks a query vector exactly as `ShardCollection.search` does.
    public func validate(query: [Float]) throws(SchemaError) {
        try PointValidation.check(vector: query, schema: self, pointID: nil)
    }

    /// Checks a metadata filter (filterable value types, non-empty IN lists).
    public static func validate(filter: MetadataFilter) throws(SchemaError) {
        try PointValidation.check(filter: filter)
    }

    /// Checks an id for get and delete.
    public static func validate(pointID: String) throws(SchemaError) {
        try PointValidation.check(id: pointID)
    }
}

extension SearchLimits {
    /// The one check of k, run where a search enters a service (the router for REST, a shard
    /// for gRPC) with one message.
    public static func check(k: Int) throws(SchemaError) {
        guard (1...maxK).contains(k) else {
            throw .invalidSearch("k \(k) is out of range; k must be between 1 and \(maxK)")
        }
    }
}
