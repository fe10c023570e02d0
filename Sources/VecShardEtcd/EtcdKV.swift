import NIOCore
import VecShardHTTP
import VecShardProto
import VecShardRPC

/// etcd's v3 KV service over the project's gRPC client (issue #18, "Topology in etcd"): reads,
/// writes and the compare-and-swap a topology change needs. Tries the endpoints in turn; a
/// member that does not answer is skipped for the next call.
public struct EtcdKV: Sendable {
    public let endpoints: [Peer]
    let rpc: GRPCClient
    public let timeout: TimeAmount

    public init(endpoints: [Peer], http: HTTP2Client, timeout: TimeAmount = .seconds(5)) {
        precondition(!endpoints.isEmpty, "etcd needs at least one endpoint")
        self.endpoints = endpoints
        self.rpc = GRPCClient(http: http)
        self.timeout = timeout
    }

    /// A key's value and its revisions.
    public struct Entry: Sendable, Equatable {
        public var key: String
        public var value: [UInt8]
        /// The store revision of its last change (what a compare-and-swap names).
        public var modRevision: Int64
        public var createRevision: Int64
        /// The lease the key is attached to (0: none).
        public var lease: Int64 = 0
    }

    /// `key` (nil: absent) and the store's revision when it was read.
    public func get(_ key: String) async throws -> (entry: Entry?, revision: Int64) {
        let r: EtcdRangeResponse = try await call("Range", EtcdRangeRequest(key: Array(key.utf8)))
        return (r.kvs.first.map(Self.entry), r.header.revision)
    }

    /// Every key that starts with `prefix`, in key order.
    public func list(prefix: String) async throws -> (entries: [Entry], revision: Int64) {
        let r: EtcdRangeResponse = try await call("Range", EtcdRangeRequest(key: Array(prefix.utf8), rangeEnd: Self.prefixEnd(Array(prefix.utf8))))
        return (r.kvs.map(Self.entry), r.header.revision)
    }

    /// Writes `value` (attached to `lease` when non-zero: the key goes when the lease expires);
    /// answers the store revision of the write.
    @discardableResult
    public func put(_ key: String, _ value: [UInt8], lease: Int64 = 0) async throws -> Int64 {
        let r: EtcdPutResponse = try await call("Put", EtcdPutRequest(key: Array(key.utf8), value: value, lease: lease))
        return r.header.revision
    }

    /// A transaction as it is (the callers that need several compares).
    public func txn(_ request: EtcdTxnRequest) async throws -> EtcdTxnResponse {
        try await call("Txn", request)
    }

    /// A lease of `ttlSeconds`: its id and the TTL etcd granted.
    public func grantLease(ttlSeconds: Int64) async throws -> (id: Int64, ttl: Int64) {
        let r: EtcdLeaseGrantResponse = try await call("LeaseGrant", EtcdLeaseGrantRequest(ttl: ttlSeconds), service: "Lease")
        guard r.error.isEmpty, r.id != 0 else { throw EtcdError.refused("lease not granted: \(r.error)") }
        return (r.id, r.ttl)
    }

    /// Renews `lease`; answers its TTL from now on, 0 when it no longer exists (expired or
    /// revoked: its keys are gone). One request on a LeaseKeepAlive stream of its own (etcd
    /// answers it, then ends the stream when the request side ends).
    public func keepAlive(lease: Int64) async throws -> Int64 {
        let r: EtcdLeaseKeepAliveResponse = try await call("LeaseKeepAlive", EtcdLeaseIDRequest(id: lease), service: "Lease")
        return r.ttl
    }

    /// Revokes `lease`: its keys go at once.
    public func revoke(lease: Int64) async throws {
        let _: EtcdLeaseKeepAliveResponse = try await call("LeaseRevoke", EtcdLeaseIDRequest(id: lease), service: "Lease")
    }

    /// Watches every key that starts with `prefix` from `startRevision` on (0: from now), on
    /// the endpoint `attempt` picks (round robin: a caller that reconnects after a failure passes
    /// the next attempt number). The sequence ends with an error when the stream breaks; the
    /// caller resumes from the revision after the last one it saw.
    public func watch(prefix: String, startRevision: Int64, attempt: Int = 0) -> AsyncThrowingStream<EtcdWatchResponse, any Error> {
        let key = Array(prefix.utf8)
        let peer = endpoints[attempt % endpoints.count]
        return rpc.openServerStream("/etcdserverpb.Watch/Watch",
                                    EtcdWatchCreateRequest(key: key, rangeEnd: Self.prefixEnd(key), startRevision: startRevision), to: peer)
    }

    /// Deletes `key`; answers how many keys went.
    @discardableResult
    public func delete(_ key: String) async throws -> Int64 {
        let r: EtcdDeleteRangeResponse = try await call("DeleteRange", EtcdDeleteRangeRequest(key: Array(key.utf8)))
        return r.deleted
    }

    /// Writes `value` only if `key` was last changed at `expectedModRevision` (0: only if it
    /// does not exist). Answers the revision of the write, or nil (and writes nothing) when
    /// another change came first.
    public func compareAndSwap(_ key: String, expectedModRevision: Int64, _ value: [UInt8]) async throws -> Int64? {
        let k = Array(key.utf8)
        let condition = expectedModRevision == 0 ? EtcdCompare(key: k, .createRevision(0)) : EtcdCompare(key: k, .modRevision(expectedModRevision))
        let r: EtcdTxnResponse = try await call("Txn", EtcdTxnRequest(compare: [condition], success: [.put(EtcdPutRequest(key: k, value: value))]))
        return r.succeeded ? r.header.revision : nil
    }

    /// The end of the range of keys that start with `prefix` (etcd's convention: the prefix with
    /// its last byte below 0xff incremented; "\0" for a prefix of 0xff bytes only: every key).
    public static func prefixEnd(_ prefix: [UInt8]) -> [UInt8] {
        var end = prefix
        while let last = end.last {
            if last < 0xff {
                end[end.count - 1] = last + 1
                return end
            }
            end.removeLast()
        }
        return [0]
    }

    static func entry(_ kv: EtcdKeyValue) -> Entry {
        Entry(key: String(decoding: kv.key, as: UTF8.self), value: kv.value, modRevision: kv.modRevision, createRevision: kv.createRevision, lease: kv.lease)
    }

    private func call<Request: ProtoMessage, Response: ProtoMessage>(_ method: String, _ request: Request,
                                                                   service: String = "KV") async throws -> Response {
        var lastError: (any Error)?
        for peer in endpoints {
            do {
                return try await rpc.unary("/etcdserverpb.\(service)/\(method)", request, to: peer, timeout: timeout)
            } catch let error as GRPCError where error.code == .unavailable || error.code == .deadlineExceeded {
                lastError = error
            }
        }
        throw EtcdError.unreachable(endpoints: endpoints.map(\.description), lastError: "\(lastError.map { "\($0)" } ?? "none")")
    }
}

public enum EtcdError: Error, Equatable, CustomStringConvertible {
    case unreachable(endpoints: [String], lastError: String)
    /// etcd answered but did not do what was asked.
    case refused(String)

    public var description: String {
        switch self {
        case .unreachable(let endpoints, let last): return "no etcd endpoint answered (\(endpoints.joined(separator: ", "))): \(last)"
        case .refused(let why): return why
        }
    }
}
