// Over 500 lines on purpose: every message of shard.proto in one file, in the .proto's order, so a
// field number is checked against the .proto in one place (the interop tests decode each one).

/// The messages of `proto/vecshard/v1/shard.proto`, encoded and decoded by hand. Field numbers
/// are the .proto's; every type writes its fields in number order, map entries sorted by key, so
/// encoding is deterministic.

/// `Value`: a metadata value (a oneof).
public enum MetadataValueMessage: Sendable, Equatable, Hashable {
    case string(String)
    case int(Int64)
    case double(Double)
    case bool(Bool)
}

extension MetadataValueMessage: ProtoMessage {
    public init(from reader: inout ProtoReader) throws {
        var value: MetadataValueMessage?
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1: value = .string(try reader.readString(type))
            case 2: value = .int(try reader.readSInt64(type))
            case 3: value = .double(try reader.readDouble(type))
            case 4: value = .bool(try reader.readBool(type))
            default: try reader.skip(type, field: field)
            }
        }
        guard let value else { throw ProtoError(.malformed, "Value has no kind set") }
        self = value
    }

    public func encode(to writer: inout ProtoWriter) {
        // oneof members have presence: written even when they hold the default.
        switch self {
        case .string(let s): writer.writeString(1, s, always: true)
        case .int(let i): writer.writeSInt64(2, i, always: true)
        case .double(let d): writer.writeDouble(3, d, always: true)
        case .bool(let b): writer.writeBool(4, b, always: true)
        }
    }
}

/// Reads one `map<string, Value>` entry into `map`.
func readMetadataEntry(_ type: WireType, from reader: inout ProtoReader, into map: inout [String: MetadataValueMessage]) throws {
    var key = ""
    var value: MetadataValueMessage?
    try reader.readNested(type) { entry in
        while let (field, type) = try entry.nextField() {
            switch field {
            case 1: key = try entry.readString(type)
            case 2: value = try entry.readMessage(type, as: MetadataValueMessage.self)
            default: try entry.skip(type, field: field)
            }
        }
    }
    guard let value else { throw ProtoError(.malformed, "metadata entry '\(key)' has no value") }
    try reader.checkRepeated(map.count + 1)
    map[key] = value
}

func writeMetadata(_ field: Int, _ map: [String: MetadataValueMessage], to writer: inout ProtoWriter) {
    for key in map.keys.sorted() {
        writer.writeNested(field) { entry in
            entry.writeString(1, key, always: true)
            entry.writeMessage(2, map[key]!)
        }
    }
}

public struct PointMessage: ProtoMessage, Equatable {
    public var id: String = ""
    public var vector: [Float] = []
    public var metadata: [String: MetadataValueMessage] = [:]

    public init(id: String = "", vector: [Float] = [], metadata: [String: MetadataValueMessage] = [:]) {
        self.id = id
        self.vector = vector
        self.metadata = metadata
    }

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1: id = try reader.readString(type)
            case 2: try reader.readFloats(type, into: &vector)
            case 3: try readMetadataEntry(type, from: &reader, into: &metadata)
            default: try reader.skip(type, field: field)
            }
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeString(1, id)
        writer.writePackedFloats(2, vector)
        writeMetadata(3, metadata, to: &writer)
    }
}

/// `Filter`: field → accepted values (one value: equality; several: IN); all must hold.
public struct FilterMessage: ProtoMessage, Equatable {
    public var must: [String: [MetadataValueMessage]] = [:]

    public init(must: [String: [MetadataValueMessage]] = [:]) { self.must = must }

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            guard field == 1 else { try reader.skip(type, field: field); continue }
            var key = ""
            var values: [MetadataValueMessage] = []
            try reader.readNested(type) { entry in
                while let (f, t) = try entry.nextField() {
                    switch f {
                    case 1: key = try entry.readString(t)
                    case 2:
                        values = []
                        try entry.readNested(t) { list in
                            while let (lf, lt) = try list.nextField() {
                                if lf == 1 {
                                    try list.checkRepeated(values.count + 1)
                                    values.append(try list.readMessage(lt, as: MetadataValueMessage.self))
                                } else {
                                    try list.skip(lt, field: lf)
                                }
                            }
                        }
                    default: try entry.skip(t, field: f)
                    }
                }
            }
            must[key] = values
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        for key in must.keys.sorted() {
            writer.writeNested(1) { entry in
                entry.writeString(1, key, always: true)
                entry.writeNested(2) { list in list.writeRepeatedMessages(1, must[key]!) }
            }
        }
    }
}

public struct IndexSpecMessage: ProtoMessage, Equatable {
    public var type: String = ""
    public var nlist: UInt32 = 0
    public var pqM: UInt32 = 0
    public var m: UInt32 = 0
    public var efConstruction: UInt32 = 0
    public var nprobe: UInt32 = 0
    public var efSearch: UInt32 = 0
    public var refine: UInt32 = 0

    public init(type: String = "", nlist: UInt32 = 0, pqM: UInt32 = 0, m: UInt32 = 0, efConstruction: UInt32 = 0,
                nprobe: UInt32 = 0, efSearch: UInt32 = 0, refine: UInt32 = 0) {
        self.type = type
        self.nlist = nlist
        self.pqM = pqM
        self.m = m
        self.efConstruction = efConstruction
        self.nprobe = nprobe
        self.efSearch = efSearch
        self.refine = refine
    }

    public init(from reader: inout ProtoReader) throws {
        while let (field, t) = try reader.nextField() {
            switch field {
            case 1: type = try reader.readString(t)
            case 2: nlist = try reader.readUInt32(t)
            case 3: pqM = try reader.readUInt32(t)
            case 4: m = try reader.readUInt32(t)
            case 5: efConstruction = try reader.readUInt32(t)
            case 6: nprobe = try reader.readUInt32(t)
            case 7: efSearch = try reader.readUInt32(t)
            case 8: refine = try reader.readUInt32(t)
            default: try reader.skip(t, field: field)
            }
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeString(1, type)
        writer.writeUInt32(2, nlist)
        writer.writeUInt32(3, pqM)
        writer.writeUInt32(4, m)
        writer.writeUInt32(5, efConstruction)
        writer.writeUInt32(6, nprobe)
        writer.writeUInt32(7, efSearch)
        writer.writeUInt32(8, refine)
    }
}

public struct CreateCollectionRequest: ProtoMessage, Equatable {
    public var name = ""
    public var dimension: UInt32 = 0
    public var metric = ""
    public var index: IndexSpecMessage?
    public var shardKey = ""

    public init(name: String = "", dimension: UInt32 = 0, metric: String = "", index: IndexSpecMessage? = nil, shardKey: String = "") {
        self.name = name
        self.dimension = dimension
        self.metric = metric
        self.index = index
        self.shardKey = shardKey
    }

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1: name = try reader.readString(type)
            case 2: dimension = try reader.readUInt32(type)
            case 3: metric = try reader.readString(type)
            case 4: index = try reader.readMessage(type)
            case 5: shardKey = try reader.readString(type)
            default: try reader.skip(type, field: field)
            }
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeString(1, name)
        writer.writeUInt32(2, dimension)
        writer.writeString(3, metric)
        writer.writeMessage(4, index)
        writer.writeString(5, shardKey)
    }
}

/// `DropCollectionRequest` and `DescribeCollectionRequest` (one field: the name).
public struct CollectionNameRequest: ProtoMessage, Equatable {
    public var name = ""

    public init(name: String = "") { self.name = name }

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            if field == 1 { name = try reader.readString(type) } else { try reader.skip(type, field: field) }
        }
    }

    public func encode(to writer: inout ProtoWriter) { writer.writeString(1, name) }
}

public struct DropCollectionResponse: ProtoMessage, Equatable {
    public var dropped = false

    public init(dropped: Bool = false) { self.dropped = dropped }

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            if field == 1 { dropped = try reader.readBool(type) } else { try reader.skip(type, field: field) }
        }
    }

    public func encode(to writer: inout ProtoWriter) { writer.writeBool(1, dropped) }
}

public struct CollectionInfoMessage: ProtoMessage, Equatable {
    public var name = ""
    public var dimension: UInt32 = 0
    public var metric = ""
    public var index: IndexSpecMessage?
    public var shardKey = ""
    public var count: UInt64 = 0
    public var segments: UInt32 = 0
    public var memoryBytes: UInt64 = 0
    public var diskBytes: UInt64 = 0
    public var lsn: UInt64 = 0
    public var indexState = ""
    /// Why the collection is not open ("" when it is): a stable code and a message.
    public var errorCode = ""
    public var errorMessage = ""
    /// Background work since the collection was opened.
    public var maintenanceError = ""
    public var failedSeals: UInt64 = 0
    public var failedCompactions: UInt64 = 0
    public var quarantinedPoints: UInt64 = 0
    /// The last write found the disk full: read-only until there is room.
    public var diskFull = false
    /// Versions (docs/ARCHITECTURE.md): the highest applied, the checksum of the live
    /// (id, version) pairs, tombstones kept and the highest version dropped.
    public var version: UInt64 = 0
    public var checksum: UInt64 = 0
    public var tombstones: UInt64 = 0
    public var tombstoneFloor: UInt64 = 0

    public init() {}

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1: name = try reader.readString(type)
            case 2: dimension = try reader.readUInt32(type)
            case 3: metric = try reader.readString(type)
            case 4: index = try reader.readMessage(type)
            case 5: shardKey = try reader.readString(type)
            case 6: count = try reader.readUInt64(type)
            case 7: segments = try reader.readUInt32(type)
            case 8: memoryBytes = try reader.readUInt64(type)
            case 9: diskBytes = try reader.readUInt64(type)
            case 10: lsn = try reader.readUInt64(type)
            case 11: indexState = try reader.readString(type)
            case 12: errorCode = try reader.readString(type)
            case 13: errorMessage = try reader.readString(type)
            case 14: maintenanceError = try reader.readString(type)
            case 15: failedSeals = try reader.readUInt64(type)
            case 16: failedCompactions = try reader.readUInt64(type)
            case 17: quarantinedPoints = try reader.readUInt64(type)
            case 18: diskFull = try reader.readBool(type)
            case 19: version = try reader.readUInt64(type)
            case 20: checksum = try reader.readFixed64(type)
            case 21: tombstones = try reader.readUInt64(type)
            case 22: tombstoneFloor = try reader.readUInt64(type)
            default: try reader.skip(type, field: field)
            }
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeString(1, name)
        writer.writeUInt32(2, dimension)
        writer.writeString(3, metric)
        writer.writeMessage(4, index)
        writer.writeString(5, shardKey)
        writer.writeUInt64(6, count)
        writer.writeUInt32(7, segments)
        writer.writeUInt64(8, memoryBytes)
        writer.writeUInt64(9, diskBytes)
        writer.writeUInt64(10, lsn)
        writer.writeString(11, indexState)
        writer.writeString(12, errorCode)
        writer.writeString(13, errorMessage)
        writer.writeString(14, maintenanceError)
        writer.writeUInt64(15, failedSeals)
        writer.writeUInt64(16, failedCompactions)
        writer.writeUInt64(17, quarantinedPoints)
        writer.writeBool(18, diskFull)
        writer.writeUInt64(19, version)
        writer.writeFixed64(20, checksum)
        writer.writeUInt64(21, tombstones)
        writer.writeUInt64(22, tombstoneFloor)
    }
}

public struct UpsertRequest: ProtoMessage, Equatable {
    public var collection = ""
    public var points: [PointMessage] = []
    /// The write's version (0: the shard stamps one).
    public var version: UInt64 = 0

    public init(collection: String = "", points: [PointMessage] = [], version: UInt64 = 0) {
        self.collection = collection
        self.points = points
        self.version = version
    }

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1: collection = try reader.readString(type)
            case 2:
                try reader.checkRepeated(points.count + 1)
                points.append(try reader.readMessage(type))
            case 3: version = try reader.readUInt64(type)
            default: try reader.skip(type, field: field)
            }
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeString(1, collection)
        writer.writeRepeatedMessages(2, points)
        writer.writeUInt64(3, version)
    }
}

/// `DeleteRequest` and `GetRequest` share a shape: collection + ids (+ include_vector for Get).
public struct IDsRequest: ProtoMessage, Equatable {
    public var collection = ""
    public var ids: [String] = []
    public var includeVector = false
    /// Delete: the write's version (0: the shard stamps one). Field 3 in `DeleteRequest`,
    /// which has no include_vector.
    public var version: UInt64 = 0

    public init(collection: String = "", ids: [String] = [], includeVector: Bool = false, version: UInt64 = 0) {
        self.collection = collection
        self.ids = ids
        self.includeVector = includeVector
        self.version = version
    }

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1: collection = try reader.readString(type)
            case 2:
                try reader.checkRepeated(ids.count + 1)
                ids.append(try reader.readString(type))
            case 3: includeVector = try reader.readBool(type)
            case 4: version = try reader.readUInt64(type)
            default: try reader.skip(type, field: field)
            }
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeString(1, collection)
        writer.writeRepeatedStrings(2, ids)
        writer.writeBool(3, includeVector)
        writer.writeUInt64(4, version)
    }
}

public struct WriteResponse: ProtoMessage, Equatable {
    public var lsn: UInt64 = 0
    public var applied: UInt32 = 0
    /// Replicas that did not acknowledge a write that still met its quorum.
    public var failedReplicas: [String] = []
    /// The version the write carried.
    public var version: UInt64 = 0

    public init(lsn: UInt64 = 0, applied: UInt32 = 0, failedReplicas: [String] = [], version: UInt64 = 0) {
        self.lsn = lsn
        self.applied = applied
        self.failedReplicas = failedReplicas
        self.version = version
    }

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1: lsn = try reader.readUInt64(type)
            case 2: applied = try reader.readUInt32(type)
            case 3:
                try reader.checkRepeated(failedReplicas.count + 1)
                failedReplicas.append(try reader.readString(type))
            case 4: version = try reader.readUInt64(type)
            default: try reader.skip(type, field: field)
            }
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeUInt64(1, lsn)
        writer.writeUInt32(2, applied)
        writer.writeRepeatedStrings(3, failedReplicas)
        writer.writeUInt64(4, version)
    }
}

/// `GetResponse` and `ScanResponse`: a list of points.
public struct PointsResponse: ProtoMessage, Equatable {
    public var points: [PointMessage] = []

    public init(points: [PointMessage] = []) { self.points = points }

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            if field == 1 {
                try reader.checkRepeated(points.count + 1)
                points.append(try reader.readMessage(type))
            } else {
                try reader.skip(type, field: field)
            }
        }
    }

    public func encode(to writer: inout ProtoWriter) { writer.writeRepeatedMessages(1, points) }
}

/// `ChangesRequest`: one page of a collection's changes after a position in (version, id)
/// order (catch-up by difference).
public struct ChangesRequest: ProtoMessage, Equatable {
    public var collection = ""
    public var afterVersion: UInt64 = 0
    /// The page holds the items whose (version, id) is above (afterVersion, afterID), ids
    /// compared by their UTF-8 bytes; a first page has afterID "".
    public var afterID = ""
    /// Items per page (0 = 1000).
    public var limit: UInt32 = 0
    /// List even when tombstones above afterVersion were dropped (a full comparison).
    public var ignoreFloor = false
    /// Only ids that `owner` owns among `shards` by placement.
    public var selector: PlacementSelectorMessage?

    public init(collection: String = "", afterVersion: UInt64 = 0, afterID: String = "", limit: UInt32 = 0, ignoreFloor: Bool = false,
                selector: PlacementSelectorMessage? = nil) {
        (self.collection, self.afterVersion, self.afterID, self.limit, self.ignoreFloor) = (collection, afterVersion, afterID, limit, ignoreFloor)
        self.selector = selector
    }

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1: collection = try reader.readString(type)
            case 2: afterVersion = try reader.readUInt64(type)
            case 3: afterID = try reader.readString(type)
            case 4: limit = try reader.readUInt32(type)
            case 5: ignoreFloor = try reader.readBool(type)
            case 6: selector = try reader.readMessage(type)
            default: try reader.skip(type, field: field)
            }
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeString(1, collection)
        writer.writeUInt64(2, afterVersion)
        writer.writeString(3, afterID)
        writer.writeUInt32(4, limit)
        writer.writeBool(5, ignoreFloor)
        writer.writeMessage(6, selector)
    }
}

/// `ApplyRequest`: points and deletes with their own versions (a copy), last writer wins.
public struct ApplyRequest: ProtoMessage, Equatable {
    public var collection = ""
    public var points: [PointMessage] = []
    public var versions: [UInt64] = []
    public var deletedIDs: [String] = []
    public var deletedVersions: [UInt64] = []

    public init(collection: String = "", points: [PointMessage] = [], versions: [UInt64] = [], deletedIDs: [String] = [], deletedVersions: [UInt64] = []) {
        (self.collection, self.points, self.versions, self.deletedIDs, self.deletedVersions) = (collection, points, versions, deletedIDs, deletedVersions)
    }

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1: collection = try reader.readString(type)
            case 2:
                try reader.checkRepeated(points.count + 1)
                points.append(try reader.readMessage(type))
            case 3: try reader.readVarints(type, into: &versions)
            case 4:
                try reader.checkRepeated(deletedIDs.count + 1)
                deletedIDs.append(try reader.readString(type))
            case 5: try reader.readVarints(type, into: &deletedVersions)
            default: try reader.skip(type, field: field)
            }
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeString(1, collection)
        writer.writeRepeatedMessages(2, points)
        writer.writePackedVarints(3, versions)
        writer.writeRepeatedStrings(4, deletedIDs)
        writer.writePackedVarints(5, deletedVersions)
    }
}

/// `ChangesResponse`: points written after the position (with versions), ids deleted after it
/// (with the versions of their deletes), in (version, id) order together, and whether more follow.
public struct ChangesResponse: ProtoMessage, Equatable {
    public var points: [PointMessage] = []
    public var versions: [UInt64] = []
    public var deletedIDs: [String] = []
    public var deletedVersions: [UInt64] = []
    public var more = false
    /// Where the next page starts (the last item of this one).
    public var nextVersion: UInt64 = 0
    public var nextID = ""
    public var tombstoneFloor: UInt64 = 0

    public init() {}

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1:
                try reader.checkRepeated(points.count + 1)
                points.append(try reader.readMessage(type))
            case 2: try reader.readVarints(type, into: &versions)
            case 3:
                try reader.checkRepeated(deletedIDs.count + 1)
                deletedIDs.append(try reader.readString(type))
            case 4: try reader.readVarints(type, into: &deletedVersions)
            case 5: more = try reader.readBool(type)
            case 6: nextVersion = try reader.readUInt64(type)
            case 7: nextID = try reader.readString(type)
            case 8: tombstoneFloor = try reader.readUInt64(type)
            default: try reader.skip(type, field: field)
            }
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeRepeatedMessages(1, points)
        writer.writePackedVarints(2, versions)
        writer.writeRepeatedStrings(3, deletedIDs)
        writer.writePackedVarints(4, deletedVersions)
        writer.writeBool(5, more)
        writer.writeUInt64(6, nextVersion)
        writer.writeString(7, nextID)
        writer.writeUInt64(8, tombstoneFloor)
    }
}

public struct SearchParamsMessage: ProtoMessage, Equatable {
    public var k: UInt32 = 0
    public var nprobe: UInt32 = 0
    public var ef: UInt32 = 0
    public var refine: UInt32 = 0
    public var exact = false

    public init(k: UInt32 = 0, nprobe: UInt32 = 0, ef: UInt32 = 0, refine: UInt32 = 0, exact: Bool = false) {
        self.k = k
        self.nprobe = nprobe
        self.ef = ef
        self.refine = refine
        self.exact = exact
    }

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1: k = try reader.readUInt32(type)
            case 2: nprobe = try reader.readUInt32(type)
            case 3: ef = try reader.readUInt32(type)
            case 4: refine = try reader.readUInt32(type)
            case 5: exact = try reader.readBool(type)
            default: try reader.skip(type, field: field)
            }
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeUInt32(1, k)
        writer.writeUInt32(2, nprobe)
        writer.writeUInt32(3, ef)
        writer.writeUInt32(4, refine)
        writer.writeBool(5, exact)
    }
}

public struct QueryMessage: ProtoMessage, Equatable {
    public var vector: [Float] = []
    public var filter: FilterMessage?
    public var params: SearchParamsMessage?
    public var includeVector = false
    public var includeMetadata = false

    public init(vector: [Float] = [], filter: FilterMessage? = nil, params: SearchParamsMessage? = nil,
                includeVector: Bool = false, includeMetadata: Bool = false) {
        self.vector = vector
        self.filter = filter
        self.params = params
        self.includeVector = includeVector
        self.includeMetadata = includeMetadata
    }

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1: try reader.readFloats(type, into: &vector)
            case 2: filter = try reader.readMessage(type)
            case 3: params = try reader.readMessage(type)
            case 4: includeVector = try reader.readBool(type)
            case 5: includeMetadata = try reader.readBool(type)
            default: try reader.skip(type, field: field)
            }
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writePackedFloats(1, vector)
        writer.writeMessage(2, filter)
        writer.writeMessage(3, params)
        writer.writeBool(4, includeVector)
        writer.writeBool(5, includeMetadata)
    }
}

public struct SearchRequest: ProtoMessage, Equatable {
    public var collection = ""
    public var queries: [QueryMessage] = []

    public init(collection: String = "", queries: [QueryMessage] = []) {
        self.collection = collection
        self.queries = queries
    }

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1: collection = try reader.readString(type)
            case 2:
                try reader.checkRepeated(queries.count + 1)
                queries.append(try reader.readMessage(type))
            default: try reader.skip(type, field: field)
            }
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeString(1, collection)
        writer.writeRepeatedMessages(2, queries)
    }
}

public struct ScoredPointMessage: ProtoMessage, Equatable {
    public var id = ""
    public var score: Float = 0
    public var metadata: [String: MetadataValueMessage] = [:]
    public var vector: [Float] = []

    public init(id: String = "", score: Float = 0, metadata: [String: MetadataValueMessage] = [:], vector: [Float] = []) {
        self.id = id
        self.score = score
        self.metadata = metadata
        self.vector = vector
    }

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1: id = try reader.readString(type)
            case 2: score = try reader.readFloat(type)
            case 3: try readMetadataEntry(type, from: &reader, into: &metadata)
            case 4: try reader.readFloats(type, into: &vector)
            default: try reader.skip(type, field: field)
            }
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeString(1, id)
        writer.writeFloat(2, score)
        writeMetadata(3, metadata, to: &writer)
        writer.writePackedFloats(4, vector)
    }
}

public struct SearchResponse: ProtoMessage, Equatable {
    /// One list of hits per query, best first.
    public var results: [[ScoredPointMessage]] = []

    public init(results: [[ScoredPointMessage]] = []) { self.results = results }

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            guard field == 1 else { try reader.skip(type, field: field); continue }
            var hits: [ScoredPointMessage] = []
            try reader.readNested(type) { result in
                while let (f, t) = try result.nextField() {
                    if f == 1 {
                        try result.checkRepeated(hits.count + 1)
                        hits.append(try result.readMessage(t))
                    } else {
                        try result.skip(t, field: f)
                    }
                }
            }
            try reader.checkRepeated(results.count + 1)
            results.append(hits)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        for hits in results {
            writer.writeNested(1) { $0.writeRepeatedMessages(1, hits) }
        }
    }
}

public struct StatsRequest: ProtoMessage, Equatable {
    public init() {}

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() { try reader.skip(type, field: field) }
    }

    public func encode(to writer: inout ProtoWriter) {}
}

public struct StatsResponse: ProtoMessage, Equatable {
    public var shardID = ""
    public var collections: [CollectionInfoMessage] = []
    public var memoryBytes: UInt64 = 0
    public var diskBytes: UInt64 = 0
    /// `serving`, `awaiting_sync` or `syncing` ("" from a shard that predates replica repair: serving).
    public var replicaState = ""
    /// Collections on disk that the shard could not open (a damaged write-ahead log...):
    /// name, `errorCode` and `errorMessage` set.
    public var refusedCollections: [CollectionInfoMessage] = []
    /// The replica knows it missed writes (a catch-up failed or is due): not a source.
    public var catchUpPending = false
    /// Routers that sent this replica a Stats call in the last 10 s (their `vecshard-router-id`).
    public var routersSeen: [String] = []

    public init() {}

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1: shardID = try reader.readString(type)
            case 2:
                try reader.checkRepeated(collections.count + 1)
                collections.append(try reader.readMessage(type))
            case 3: memoryBytes = try reader.readUInt64(type)
            case 4: diskBytes = try reader.readUInt64(type)
            case 5: replicaState = try reader.readString(type)
            case 6:
                try reader.checkRepeated(refusedCollections.count + 1)
                refusedCollections.append(try reader.readMessage(type))
            case 7: catchUpPending = try reader.readBool(type)
            case 8:
                try reader.checkRepeated(routersSeen.count + 1)
                routersSeen.append(try reader.readString(type))
            default: try reader.skip(type, field: field)
            }
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeString(1, shardID)
        writer.writeRepeatedMessages(2, collections)
        writer.writeUInt64(3, memoryBytes)
        writer.writeUInt64(4, diskBytes)
        writer.writeString(5, replicaState)
        writer.writeRepeatedMessages(6, refusedCollections)
        writer.writeBool(7, catchUpPending)
        writer.writeRepeatedStrings(8, routersSeen)
    }
}

public struct PlacementSelectorMessage: ProtoMessage, Equatable {
    public var shards: [String] = []
    public var owner = ""
    /// Pick the points whose owner is not `owner`.
    public var exclude = false
    /// The owner by a whole layout (shard key → group, then the group's shards) instead of `shards`.
    public var routing: SelectorRoutingMessage?

    public init(shards: [String] = [], owner: String = "", exclude: Bool = false, routing: SelectorRoutingMessage? = nil) {
        self.shards = shards
        self.owner = owner
        self.exclude = exclude
        self.routing = routing
    }

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1:
                try reader.checkRepeated(shards.count + 1)
                shards.append(try reader.readString(type))
            case 2: owner = try reader.readString(type)
            case 3: exclude = try reader.readBool(type)
            case 4: routing = try reader.readMessage(type)
            default: try reader.skip(type, field: field)
            }
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeRepeatedStrings(1, shards)
        writer.writeString(2, owner)
        writer.writeBool(3, exclude)
        writer.writeMessage(4, routing)
    }
}

/// A collection's layout for a placement selector.
public struct SelectorRoutingMessage: ProtoMessage, Equatable {
    public struct Group: ProtoMessage, Equatable {
        public var name = ""
        public var shards: [String] = []

        public init(name: String = "", shards: [String] = []) {
            self.name = name
            self.shards = shards
        }

        public init(from reader: inout ProtoReader) throws {
            while let (field, type) = try reader.nextField() {
                switch field {
                case 1: name = try reader.readString(type)
                case 2:
                    try reader.checkRepeated(shards.count + 1)
                    shards.append(try reader.readString(type))
                default: try reader.skip(type, field: field)
                }
            }
        }

        public func encode(to writer: inout ProtoWriter) {
            writer.writeString(1, name)
            writer.writeRepeatedStrings(2, shards)
        }
    }

    public struct ValueGroup: ProtoMessage, Equatable {
        public var value = ""
        public var group = ""

        public init(value: String = "", group: String = "") {
            self.value = value
            self.group = group
        }

        public init(from reader: inout ProtoReader) throws {
            while let (field, type) = try reader.nextField() {
                switch field {
                case 1: value = try reader.readString(type)
                case 2: group = try reader.readString(type)
                default: try reader.skip(type, field: field)
                }
            }
        }

        public func encode(to writer: inout ProtoWriter) {
            writer.writeString(1, value)
            writer.writeString(2, group)
        }
    }

    public var groups: [Group] = []
    /// "" = the collection has no shard key.
    public var shardKey = ""
    public var valueGroups: [ValueGroup] = []
    public var defaultGroup = ""

    public init(groups: [Group] = [], shardKey: String = "", valueGroups: [ValueGroup] = [], defaultGroup: String = "") {
        self.groups = groups
        self.shardKey = shardKey
        self.valueGroups = valueGroups
        self.defaultGroup = defaultGroup
    }

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1:
                try reader.checkRepeated(groups.count + 1)
                groups.append(try reader.readMessage(type))
            case 2: shardKey = try reader.readString(type)
            case 3:
                try reader.checkRepeated(valueGroups.count + 1)
                valueGroups.append(try reader.readMessage(type))
            case 4: defaultGroup = try reader.readString(type)
            default: try reader.skip(type, field: field)
            }
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeRepeatedMessages(1, groups)
        writer.writeString(2, shardKey)
        writer.writeRepeatedMessages(3, valueGroups)
        writer.writeString(4, defaultGroup)
    }
}

public struct ScanRequest: ProtoMessage, Equatable {
    public var collection = ""
    public var batchSize: UInt32 = 0
    public var selector: PlacementSelectorMessage?
    public var idsOnly = false

    public init(collection: String = "", batchSize: UInt32 = 0, selector: PlacementSelectorMessage? = nil, idsOnly: Bool = false) {
        self.collection = collection
        self.batchSize = batchSize
        self.selector = selector
        self.idsOnly = idsOnly
    }

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1: collection = try reader.readString(type)
            case 2: batchSize = try reader.readUInt32(type)
            case 3: selector = try reader.readMessage(type)
            case 4: idsOnly = try reader.readBool(type)
            default: try reader.skip(type, field: field)
            }
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeString(1, collection)
        writer.writeUInt32(2, batchSize)
        writer.writeMessage(3, selector)
        writer.writeBool(4, idsOnly)
    }
}

public struct MaintainRequest: ProtoMessage, Equatable {
    public enum Operation: UInt32, Sendable { case flush = 0, compact = 1 }
    public var collection = ""
    /// Unknown values (a newer client) decode as nil and are refused by the server.
    public var operation: Operation? = .flush

    public init(collection: String = "", operation: Operation = .flush) {
        self.collection = collection
        self.operation = operation
    }

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1: collection = try reader.readString(type)
            case 2: operation = Operation(rawValue: try reader.readUInt32(type))
            default: try reader.skip(type, field: field)
            }
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeString(1, collection)
        writer.writeUInt32(2, operation?.rawValue ?? 0)
    }
}

/// `MaintainResponse`: empty.
public typealias MaintainResponse = StatsRequest

/// `SyncRequest`: bring a replica up to date from one of `peers` (host:port of replicas of the same shard).
public struct SyncRequest: ProtoMessage, Equatable {
    public var peers: [String] = []
    public var force = false
    /// Catch up on the changes after this version (with `hasAfterVersion`; else the replica
    /// chooses from what it knows).
    public var afterVersion: UInt64 = 0
    public var hasAfterVersion = false

    public init(peers: [String] = [], force: Bool = false, afterVersion: UInt64? = nil) {
        self.peers = peers
        self.force = force
        self.afterVersion = afterVersion ?? 0
        self.hasAfterVersion = afterVersion != nil
    }

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1:
                try reader.checkRepeated(peers.count + 1)
                peers.append(try reader.readString(type))
            case 2: force = try reader.readBool(type)
            case 3: afterVersion = try reader.readUInt64(type)
            case 4: hasAfterVersion = try reader.readBool(type)
            default: try reader.skip(type, field: field)
            }
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeRepeatedStrings(1, peers)
        writer.writeBool(2, force)
        writer.writeUInt64(3, afterVersion)
        writer.writeBool(4, hasAfterVersion)
    }
}

public struct SyncResponse: ProtoMessage, Equatable {
    public var replicaState = ""
    public var source = ""
    public var copied: UInt64 = 0
    public var deleted: UInt64 = 0
    public var collections: UInt32 = 0
    /// `changes` (by difference after a version) or `full` (a whole comparison).
    public var mode = ""
    /// Points and deletes received from the peer.
    public var transferred: UInt64 = 0

    public init(replicaState: String = "", source: String = "", copied: UInt64 = 0, deleted: UInt64 = 0, collections: UInt32 = 0,
                mode: String = "", transferred: UInt64 = 0) {
        self.replicaState = replicaState
        self.source = source
        self.copied = copied
        self.deleted = deleted
        self.collections = collections
        self.mode = mode
        self.transferred = transferred
    }

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1: replicaState = try reader.readString(type)
            case 2: source = try reader.readString(type)
            case 3: copied = try reader.readUInt64(type)
            case 4: deleted = try reader.readUInt64(type)
            case 5: collections = try reader.readUInt32(type)
            case 6: mode = try reader.readString(type)
            case 7: transferred = try reader.readUInt64(type)
            default: try reader.skip(type, field: field)
            }
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeString(1, replicaState)
        writer.writeString(2, source)
        writer.writeUInt64(3, copied)
        writer.writeUInt64(4, deleted)
        writer.writeUInt32(5, collections)
        writer.writeString(6, mode)
        writer.writeUInt64(7, transferred)
    }
}
