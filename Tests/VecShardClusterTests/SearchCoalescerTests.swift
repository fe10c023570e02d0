import Synchronization
import Testing
@testable import VecShardCluster
import VecShardSchema
import VecShardShardAPI

/// A fake shard call: answers each query with one hit named after its first coordinate, after a
/// short sleep, and records how many calls ran at once and how large they were.
private final class FakeShard: Sendable {
    let calls = Mutex<[Int]>([])
    let running = Atomic<Int>(0)
    let maxRunning = Atomic<Int>(0)

    func send(_ request: ShardSearch) async throws -> [[SearchHit]] {
        let now = running.wrappingAdd(1, ordering: .relaxed).newValue
        _ = maxRunning.max(now, ordering: .relaxed)
        defer { running.wrappingSubtract(1, ordering: .relaxed) }
        calls.withLock { $0.append(request.queries.count) }
        try await Task.sleep(for: .milliseconds(5))
        if request.queries.contains(where: { $0.vector.first == -1 }) {
            throw ShardCallError(.invalidArgument, code: "invalid_search", "query -1 is bad")
        }
        return request.queries.map { [SearchHit(id: "q\(Int($0.vector[0]))", score: 1)] }
    }
}

private final class Answers: Sendable {
    let map = Mutex<[Int: String]>([:])
}

@Suite struct SearchCoalescerTests {
    private func query(_ i: Int) -> ShardSearch {
        ShardSearch(collection: "c", queries: [ShardQuery(vector: [Float(i), 0], k: 1)])
    }

    @Test func concurrentSearchesShareCallsAndEachGetsItsOwnAnswer() async throws {
        let shard = FakeShard()
        let coalescer = SearchCoalescer(maxInFlight: 2, maxQueries: 64)
        let answers = Answers()
        await withTaskGroup(of: Void.self) { group in
            for i in 0..<60 {
                group.addTask {
                    let r = try? await coalescer.search(self.query(i)) { try await shard.send($0) }
                    answers.map.withLock { $0[i] = r?.first?.first?.id ?? "error" }
                }
            }
        }
        let got = answers.map.withLock { $0 }
        #expect(got.count == 60 && got.allSatisfy { $0.value == "q\($0.key)" }, "\(got.filter { $0.value != "q\($0.key)" })")
        let calls = shard.calls.withLock { $0 }
        #expect(calls.reduce(0, +) == 60)
        #expect(calls.count < 30, "60 concurrent searches took \(calls.count) calls: \(calls)")
        #expect(shard.maxRunning.load(ordering: .relaxed) <= 2)
    }

    @Test func aBadQueryDoesNotFailTheOthersOfItsBatch() async throws {
        let shard = FakeShard()
        let coalescer = SearchCoalescer(maxInFlight: 1, maxQueries: 64)
        let answers = Answers()
        await withTaskGroup(of: Void.self) { group in
            for i in [-1, 1, 2, 3, 4, 5, 6, 7] {
                group.addTask {
                    do {
                        let r = try await coalescer.search(self.query(i)) { try await shard.send($0) }
                        answers.map.withLock { $0[i] = r.first?.first?.id ?? "none" }
                    } catch let error as ShardCallError {
                        answers.map.withLock { $0[i] = error.code }
                    } catch {
                        answers.map.withLock { $0[i] = "\(error)" }
                    }
                }
            }
        }
        let got = answers.map.withLock { $0 }
        #expect(got[-1] == "invalid_search")
        for i in 1...7 { #expect(got[i] == "q\(i)", "\(i): \(String(describing: got[i]))") }
    }

    @Test func aLoneSearchGoesOutAtOnceAndAlone() async throws {
        let shard = FakeShard()
        let coalescer = SearchCoalescer(maxInFlight: 4)
        for i in 0..<5 {
            let r = try await coalescer.search(query(i)) { try await shard.send($0) }
            #expect(r.first?.first?.id == "q\(i)")
        }
        #expect(shard.calls.withLock { $0 } == [1, 1, 1, 1, 1])
    }
}
