import Synchronization
import VecShardSchema
import VecShardShardAPI
import VecShardRPC

/// Coalesces concurrent searches to one shard into fewer, larger calls, so that the cost of a
/// call (HTTP/2 stream, protobuf, task wake-ups on both sides: about 100 µs of router CPU per call,
/// measured with 16 shard processes) is shared when many queries are in flight.
///
/// At most `maxInFlight` calls run at once. A search that finds a free call slot goes out at once
/// (no added latency at low load); otherwise it waits, and when a call finishes, everything waiting
/// for the same collection (up to `maxQueries` queries) goes out as one `ShardSearch` whose
/// results are split back per caller. The shard answers the queries of a request independently,
/// so a caller gets exactly the answer it would have had alone.
final class SearchCoalescer: Sendable {
    typealias Send = @Sendable (ShardSearch) async throws -> [[SearchHit]]

    private struct Waiter {
        var request: ShardSearch
        var deadline: ContinuousClock.Instant?
        var continuation: CheckedContinuation<[[SearchHit]], any Error>
    }

    private struct State {
        var inFlight = 0
        var waiting: [Waiter] = []
    }

    let maxInFlight: Int
    let maxQueries: Int
    private let state = Mutex(State())

    init(maxInFlight: Int = 4, maxQueries: Int = 64) {
        precondition(maxInFlight >= 1 && maxQueries >= 1)
        self.maxInFlight = maxInFlight
        self.maxQueries = maxQueries
    }

    func search(_ request: ShardSearch, send: @escaping Send) async throws -> [[SearchHit]] {
        let direct = state.withLock { s -> Bool in
            guard s.inFlight < maxInFlight, s.waiting.isEmpty else { return false }
            s.inFlight += 1
            return true
        }
        if direct {
            defer { release(send) }
            return try await send(request)
        }
        return try await withCheckedThrowingContinuation { continuation in
            let launch = state.withLock { s -> Bool in
                s.waiting.append(Waiter(request: request, deadline: RequestDeadline.current, continuation: continuation))
                // A call may have finished between the check above and now.
                guard s.inFlight < maxInFlight else { return false }
                s.inFlight += 1
                return true
            }
            if launch { launchBatch(send) }
        }
    }

    /// A call slot is free: hand it to the waiters, or give it back.
    private func release(_ send: @escaping Send) {
        let more = state.withLock { s -> Bool in
            if s.waiting.isEmpty {
                s.inFlight -= 1
                return false
            }
            return true
        }
        if more { launchBatch(send) }
    }

    /// Sends the next batch of waiters (this holds one call slot).
    private func launchBatch(_ send: @escaping Send) {
        let batch = state.withLock { s -> [Waiter] in
            guard let first = s.waiting.first else { return [] }
            var taken: [Waiter] = []
            var queries = 0
            var rest: [Waiter] = []
            for w in s.waiting {
                if w.request.collection == first.request.collection && (taken.isEmpty || queries + w.request.queries.count <= maxQueries) {
                    taken.append(w)
                    queries += w.request.queries.count
                } else {
                    rest.append(w)
                }
            }
            s.waiting = rest
            return taken
        }
        guard !batch.isEmpty else {
            release(send)
            return
        }
        Task {
            await self.run(batch, send)
            self.release(send)
        }
    }

    private func run(_ batch: [Waiter], _ send: Send) async {
        if batch.count == 1 {
            let w = batch[0]
            do {
                let response = try await RequestDeadline.$current.withValue(w.deadline) { try await send(w.request) }
                w.continuation.resume(returning: response)
            } catch {
                w.continuation.resume(throwing: error)
            }
            return
        }
        // The latest deadline of the batch: no caller's call is cut shorter than it would have been.
        let deadline = batch.contains { $0.deadline == nil } ? nil : batch.compactMap(\.deadline).max()
        let combined = ShardSearch(collection: batch[0].request.collection, queries: batch.flatMap(\.request.queries))
        do {
            let response = try await RequestDeadline.$current.withValue(deadline) { try await send(combined) }
            guard response.count == combined.queries.count else {
                throw ShardCallError(.internalError, .badResponse,
                                     "shard answered \(response.count) result lists for \(combined.queries.count) queries")
            }
            var offset = 0
            for w in batch {
                let n = w.request.queries.count
                w.continuation.resume(returning: Array(response[offset..<(offset + n)]))
                offset += n
            }
        } catch {
            let failure = shardError(error)
            if ReplicatedShard.isReplicaFault(failure) {
                for w in batch { w.continuation.resume(throwing: failure) }
                return
            }
            // The caller's fault (a bad query): one query must not fail the others, so each is
            // asked again on its own and gets its own answer.
            for w in batch {
                do {
                    let response = try await RequestDeadline.$current.withValue(w.deadline) { try await send(w.request) }
                    w.continuation.resume(returning: response)
                } catch {
                    w.continuation.resume(throwing: error)
                }
            }
        }
    }
}
