/// The part of etcd's v3 API (package `etcdserverpb`: services KV, Watch, Lease; `mvccpb.KeyValue`
/// and `mvccpb.Event`) the topology store uses: Range, Put, DeleteRange and Txn with compares, a
/// watch on a key range, leases granted, kept alive and revoked. Field numbers are etcd's;
/// EtcdKVTests checks them against a real etcd.

/// `mvccpb.KeyValue`.
public struct EtcdKeyValue: ProtoMessage, Equatable {
    public var key: [UInt8] = []
    public var createRevision: Int64 = 0
    public var modRevision: Int64 = 0
    public var version: Int64 = 0
    public var value: [UInt8] = []
    public var lease: Int64 = 0

    public init(key: [UInt8] = [], value: [UInt8] = [], createRevision: Int64 = 0, modRevision: Int64 = 0, version: Int64 = 0, lease: Int64 = 0) {
        (self.key, self.value, self.createRevision, self.modRevision, self.version, self.lease) = (key, value, createRevision, modRevision, version, lease)
    }

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1: key = try reader.readBytes(type)
            case 2: createRevision = try reader.readInt64(type)
            case 3: modRevision = try reader.readInt64(type)
            case 4: version = try reader.readInt64(type)
            case 5: value = try reader.readBytes(type)
            case 6: lease = try reader.readInt64(type)
            default: try reader.skip(type, field: field)
            }
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeBytes(1, key)
        writer.writeInt64(2, createRevision)
        writer.writeInt64(3, modRevision)
        writer.writeInt64(4, version)
        writer.writeBytes(5, value)
        writer.writeInt64(6, lease)
    }
}

/// `ResponseHeader`: the store's revision when the request was applied.
public struct EtcdResponseHeader: ProtoMessage, Equatable {
    public var clusterID: UInt64 = 0
    public var memberID: UInt64 = 0
    public var revision: Int64 = 0
    public var raftTerm: UInt64 = 0

    public init() {}

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1: clusterID = try reader.readUInt64(type)
            case 2: memberID = try reader.readUInt64(type)
            case 3: revision = try reader.readInt64(type)
            case 4: raftTerm = try reader.readUInt64(type)
            default: try reader.skip(type, field: field)
            }
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeUInt64(1, clusterID)
        writer.writeUInt64(2, memberID)
        writer.writeInt64(3, revision)
        writer.writeUInt64(4, raftTerm)
    }
}

/// `RangeRequest` (no sorting, no revision filters: what a topology read needs).
public struct EtcdRangeRequest: ProtoMessage, Equatable {
    public var key: [UInt8] = []
    /// [key, rangeEnd); empty: key alone.
    public var rangeEnd: [UInt8] = []
    public var limit: Int64 = 0
    /// 0: the newest revision.
    public var revision: Int64 = 0
    public var serializable = false
    public var keysOnly = false
    public var countOnly = false

    public init(key: [UInt8] = [], rangeEnd: [UInt8] = [], limit: Int64 = 0, revision: Int64 = 0) {
        (self.key, self.rangeEnd, self.limit, self.revision) = (key, rangeEnd, limit, revision)
    }

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1: key = try reader.readBytes(type)
            case 2: rangeEnd = try reader.readBytes(type)
            case 3: limit = try reader.readInt64(type)
            case 4: revision = try reader.readInt64(type)
            case 7: serializable = try reader.readBool(type)
            case 8: keysOnly = try reader.readBool(type)
            case 9: countOnly = try reader.readBool(type)
            default: try reader.skip(type, field: field)
            }
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeBytes(1, key)
        writer.writeBytes(2, rangeEnd)
        writer.writeInt64(3, limit)
        writer.writeInt64(4, revision)
        writer.writeBool(7, serializable)
        writer.writeBool(8, keysOnly)
        writer.writeBool(9, countOnly)
    }
}

public struct EtcdRangeResponse: ProtoMessage, Equatable {
    public var header = EtcdResponseHeader()
    public var kvs: [EtcdKeyValue] = []
    public var more = false
    public var count: Int64 = 0

    public init() {}

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1: header = try reader.readMessage(type)
            case 2:
                try reader.checkRepeated(kvs.count + 1)
                kvs.append(try reader.readMessage(type))
            case 3: more = try reader.readBool(type)
            case 4: count = try reader.readInt64(type)
            default: try reader.skip(type, field: field)
            }
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeMessage(1, header)
        writer.writeRepeatedMessages(2, kvs)
        writer.writeBool(3, more)
        writer.writeInt64(4, count)
    }
}

public struct EtcdPutRequest: ProtoMessage, Equatable {
    public var key: [UInt8] = []
    public var value: [UInt8] = []
    public var lease: Int64 = 0
    public var prevKV = false

    public init(key: [UInt8] = [], value: [UInt8] = [], lease: Int64 = 0, prevKV: Bool = false) {
        (self.key, self.value, self.lease, self.prevKV) = (key, value, lease, prevKV)
    }

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1: key = try reader.readBytes(type)
            case 2: value = try reader.readBytes(type)
            case 3: lease = try reader.readInt64(type)
            case 4: prevKV = try reader.readBool(type)
            default: try reader.skip(type, field: field)
            }
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeBytes(1, key)
        writer.writeBytes(2, value)
        writer.writeInt64(3, lease)
        writer.writeBool(4, prevKV)
    }
}

public struct EtcdPutResponse: ProtoMessage, Equatable {
    public var header = EtcdResponseHeader()
    public var prevKV: EtcdKeyValue?

    public init() {}

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1: header = try reader.readMessage(type)
            case 2: prevKV = try reader.readMessage(type)
            default: try reader.skip(type, field: field)
            }
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeMessage(1, header)
        writer.writeMessage(2, prevKV)
    }
}

public struct EtcdDeleteRangeRequest: ProtoMessage, Equatable {
    public var key: [UInt8] = []
    public var rangeEnd: [UInt8] = []
    public var prevKV = false

    public init(key: [UInt8] = [], rangeEnd: [UInt8] = []) {
        (self.key, self.rangeEnd) = (key, rangeEnd)
    }

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1: key = try reader.readBytes(type)
            case 2: rangeEnd = try reader.readBytes(type)
            case 3: prevKV = try reader.readBool(type)
            default: try reader.skip(type, field: field)
            }
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeBytes(1, key)
        writer.writeBytes(2, rangeEnd)
        writer.writeBool(3, prevKV)
    }
}

public struct EtcdDeleteRangeResponse: ProtoMessage, Equatable {
    public var header = EtcdResponseHeader()
    public var deleted: Int64 = 0

    public init() {}

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1: header = try reader.readMessage(type)
            case 2: deleted = try reader.readInt64(type)
            default: try reader.skip(type, field: field)
            }
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeMessage(1, header)
        writer.writeInt64(2, deleted)
    }
}

/// `Compare`: one condition of a transaction on a key's version, revisions or value.
public struct EtcdCompare: ProtoMessage, Equatable {
    public enum Result: UInt64, Sendable { case equal = 0, greater = 1, less = 2, notEqual = 3 }
    /// What is compared; the associated value is the operand.
    public enum Target: Sendable, Equatable {
        case version(Int64)
        case createRevision(Int64)
        case modRevision(Int64)
        case value([UInt8])
    }

    public var result = Result.equal
    public var target = Target.version(0)
    public var key: [UInt8] = []
    /// Non-empty: the condition must hold for every key in [key, rangeEnd).
    public var rangeEnd: [UInt8] = []

    public init(key: [UInt8], rangeEnd: [UInt8] = [], _ target: Target, _ result: Result = .equal) {
        (self.key, self.rangeEnd, self.target, self.result) = (key, rangeEnd, target, result)
    }

    public init(from reader: inout ProtoReader) throws {
        var kind: UInt64 = 0
        var operand = Target.version(0)
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1: result = Result(rawValue: try reader.readUInt64(type)) ?? .equal
            case 2: kind = try reader.readUInt64(type)
            case 3: key = try reader.readBytes(type)
            case 4: operand = .version(try reader.readInt64(type))
            case 5: operand = .createRevision(try reader.readInt64(type))
            case 6: operand = .modRevision(try reader.readInt64(type))
            case 7: operand = .value(try reader.readBytes(type))
            case 64: rangeEnd = try reader.readBytes(type)
            default: try reader.skip(type, field: field)
            }
        }
        // The target enum decides; the oneof field carries the operand (absent: zero).
        switch (kind, operand) {
        case (0, .version), (1, .createRevision), (2, .modRevision), (3, .value): target = operand
        case (1, _): target = .createRevision(0)
        case (2, _): target = .modRevision(0)
        case (3, _): target = .value([])
        default: target = .version(0)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeUInt64(1, result.rawValue)
        switch target {
        case .version(let v):
            writer.writeUInt64(2, 0)
            writer.writeBytes(3, key)
            writer.writeInt64(4, v, always: true)
        case .createRevision(let v):
            writer.writeUInt64(2, 1)
            writer.writeBytes(3, key)
            writer.writeInt64(5, v, always: true)
        case .modRevision(let v):
            writer.writeUInt64(2, 2)
            writer.writeBytes(3, key)
            writer.writeInt64(6, v, always: true)
        case .value(let v):
            writer.writeUInt64(2, 3)
            writer.writeBytes(3, key)
            writer.writeBytes(7, v, always: true)
        }
        writer.writeBytes(64, rangeEnd)
    }
}

/// `RequestOp`: one operation of a transaction branch.
public enum EtcdRequestOp: ProtoMessage, Equatable {
    case range(EtcdRangeRequest)
    case put(EtcdPutRequest)
    case deleteRange(EtcdDeleteRangeRequest)

    public init(from reader: inout ProtoReader) throws {
        var op: EtcdRequestOp?
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1: op = .range(try reader.readMessage(type))
            case 2: op = .put(try reader.readMessage(type))
            case 3: op = .deleteRange(try reader.readMessage(type))
            default: try reader.skip(type, field: field)
            }
        }
        guard let op else { throw ProtoError(.malformed, "RequestOp holds no operation") }
        self = op
    }

    public func encode(to writer: inout ProtoWriter) {
        switch self {
        case .range(let r): writer.writeMessage(1, r)
        case .put(let p): writer.writeMessage(2, p)
        case .deleteRange(let d): writer.writeMessage(3, d)
        }
    }
}

/// `ResponseOp`: the answer to one operation (a nested transaction's is skipped).
public enum EtcdResponseOp: ProtoMessage, Equatable {
    case range(EtcdRangeResponse)
    case put(EtcdPutResponse)
    case deleteRange(EtcdDeleteRangeResponse)
    case other

    public init(from reader: inout ProtoReader) throws {
        var op = EtcdResponseOp.other
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1: op = .range(try reader.readMessage(type))
            case 2: op = .put(try reader.readMessage(type))
            case 3: op = .deleteRange(try reader.readMessage(type))
            default: try reader.skip(type, field: field)
            }
        }
        self = op
    }

    public func encode(to writer: inout ProtoWriter) {
        switch self {
        case .range(let r): writer.writeMessage(1, r)
        case .put(let p): writer.writeMessage(2, p)
        case .deleteRange(let d): writer.writeMessage(3, d)
        case .other: break
        }
    }
}

/// `TxnRequest`: if every compare holds, the success operations, else the failure ones, atomically.
public struct EtcdTxnRequest: ProtoMessage, Equatable {
    public var compare: [EtcdCompare] = []
    public var success: [EtcdRequestOp] = []
    public var failure: [EtcdRequestOp] = []

    public init(compare: [EtcdCompare] = [], success: [EtcdRequestOp] = [], failure: [EtcdRequestOp] = []) {
        (self.compare, self.success, self.failure) = (compare, success, failure)
    }

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1:
                try reader.checkRepeated(compare.count + 1)
                compare.append(try reader.readMessage(type))
            case 2:
                try reader.checkRepeated(success.count + 1)
                success.append(try reader.readMessage(type))
            case 3:
                try reader.checkRepeated(failure.count + 1)
                failure.append(try reader.readMessage(type))
            default: try reader.skip(type, field: field)
            }
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeRepeatedMessages(1, compare)
        writer.writeRepeatedMessages(2, success)
        writer.writeRepeatedMessages(3, failure)
    }
}

public struct EtcdTxnResponse: ProtoMessage, Equatable {
    public var header = EtcdResponseHeader()
    public var succeeded = false
    public var responses: [EtcdResponseOp] = []

    public init() {}

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1: header = try reader.readMessage(type)
            case 2: succeeded = try reader.readBool(type)
            case 3:
                try reader.checkRepeated(responses.count + 1)
                responses.append(try reader.readMessage(type))
            default: try reader.skip(type, field: field)
            }
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeMessage(1, header)
        writer.writeBool(2, succeeded)
        writer.writeRepeatedMessages(3, responses)
    }
}

/// `WatchRequest` with its `create_request` (the only kind sent: one watch per call).
public struct EtcdWatchCreateRequest: ProtoMessage, Equatable {
    public var key: [UInt8] = []
    public var rangeEnd: [UInt8] = []
    /// The first revision to report (0: from now on).
    public var startRevision: Int64 = 0
    /// Ask for empty responses now and then that carry the store's revision.
    public var progressNotify = false
    public var prevKV = false

    public init(key: [UInt8] = [], rangeEnd: [UInt8] = [], startRevision: Int64 = 0, progressNotify: Bool = false) {
        (self.key, self.rangeEnd, self.startRevision, self.progressNotify) = (key, rangeEnd, startRevision, progressNotify)
    }

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1:
                try reader.readNested(type) { r in
                    while let (field, type) = try r.nextField() {
                        switch field {
                        case 1: key = try r.readBytes(type)
                        case 2: rangeEnd = try r.readBytes(type)
                        case 3: startRevision = try r.readInt64(type)
                        case 4: progressNotify = try r.readBool(type)
                        case 6: prevKV = try r.readBool(type)
                        default: try r.skip(type, field: field)
                        }
                    }
                }
            default: try reader.skip(type, field: field)
            }
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeNested(1) { w in
            w.writeBytes(1, key)
            w.writeBytes(2, rangeEnd)
            w.writeInt64(3, startRevision)
            w.writeBool(4, progressNotify)
            w.writeBool(6, prevKV)
        }
    }
}

/// `mvccpb.Event`: a key put or deleted at `kv.modRevision`.
public struct EtcdEvent: ProtoMessage, Equatable {
    public enum Kind: UInt64, Sendable { case put = 0, delete = 1 }
    public var kind = Kind.put
    public var kv = EtcdKeyValue()

    public init(kind: Kind = .put, kv: EtcdKeyValue = EtcdKeyValue()) { (self.kind, self.kv) = (kind, kv) }

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1: kind = Kind(rawValue: try reader.readUInt64(type)) ?? .put
            case 2: kv = try reader.readMessage(type)
            default: try reader.skip(type, field: field)
            }
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeUInt64(1, kind.rawValue)
        writer.writeMessage(2, kv)
    }
}

/// `WatchResponse`: the watch was created or cancelled, or events (or, with progress notify
/// and no events, the store's revision only).
public struct EtcdWatchResponse: ProtoMessage, Equatable {
    public var header = EtcdResponseHeader()
    public var watchID: Int64 = 0
    public var created = false
    public var canceled = false
    /// Set when the start revision has been compacted away: the oldest revision still held.
    public var compactRevision: Int64 = 0
    public var cancelReason = ""
    public var fragment = false
    public var events: [EtcdEvent] = []

    public init() {}

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1: header = try reader.readMessage(type)
            case 2: watchID = try reader.readInt64(type)
            case 3: created = try reader.readBool(type)
            case 4: canceled = try reader.readBool(type)
            case 5: compactRevision = try reader.readInt64(type)
            case 6: cancelReason = try reader.readString(type)
            case 7: fragment = try reader.readBool(type)
            case 11:
                try reader.checkRepeated(events.count + 1)
                events.append(try reader.readMessage(type))
            default: try reader.skip(type, field: field)
            }
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeMessage(1, header)
        writer.writeInt64(2, watchID)
        writer.writeBool(3, created)
        writer.writeBool(4, canceled)
        writer.writeInt64(5, compactRevision)
        writer.writeString(6, cancelReason)
        writer.writeBool(7, fragment)
        writer.writeRepeatedMessages(11, events)
    }
}

/// `LeaseGrantRequest`: a lease of `ttl` seconds (`id` 0: etcd picks it).
public struct EtcdLeaseGrantRequest: ProtoMessage, Equatable {
    public var ttl: Int64 = 0
    public var id: Int64 = 0

    public init(ttl: Int64, id: Int64 = 0) { (self.ttl, self.id) = (ttl, id) }

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1: ttl = try reader.readInt64(type)
            case 2: id = try reader.readInt64(type)
            default: try reader.skip(type, field: field)
            }
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeInt64(1, ttl)
        writer.writeInt64(2, id)
    }
}

public struct EtcdLeaseGrantResponse: ProtoMessage, Equatable {
    public var header = EtcdResponseHeader()
    public var id: Int64 = 0
    public var ttl: Int64 = 0
    public var error = ""

    public init() {}

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1: header = try reader.readMessage(type)
            case 2: id = try reader.readInt64(type)
            case 3: ttl = try reader.readInt64(type)
            case 4: error = try reader.readString(type)
            default: try reader.skip(type, field: field)
            }
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeMessage(1, header)
        writer.writeInt64(2, id)
        writer.writeInt64(3, ttl)
        writer.writeString(4, error)
    }
}

/// `LeaseKeepAliveRequest` and `LeaseRevokeRequest` (both carry the lease id alone, field 1).
public struct EtcdLeaseIDRequest: ProtoMessage, Equatable {
    public var id: Int64 = 0

    public init(id: Int64) { self.id = id }

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1: id = try reader.readInt64(type)
            default: try reader.skip(type, field: field)
            }
        }
    }

    public func encode(to writer: inout ProtoWriter) { writer.writeInt64(1, id) }
}

/// `LeaseKeepAliveResponse` (a TTL of 0: the lease no longer exists) and `LeaseRevokeResponse`
/// (header only).
public struct EtcdLeaseKeepAliveResponse: ProtoMessage, Equatable {
    public var header = EtcdResponseHeader()
    public var id: Int64 = 0
    public var ttl: Int64 = 0

    public init() {}

    public init(from reader: inout ProtoReader) throws {
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1: header = try reader.readMessage(type)
            case 2: id = try reader.readInt64(type)
            case 3: ttl = try reader.readInt64(type)
            default: try reader.skip(type, field: field)
            }
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeMessage(1, header)
        writer.writeInt64(2, id)
        writer.writeInt64(3, ttl)
    }
}
