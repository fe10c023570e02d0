#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import CVecKernels
import VecShardPrimitives

enum SystemInfo {
    /// Cores this process may use (online processors).
    static var activeProcessorCount: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }
}

/// A pool of reusable per-search scratch objects, so searches on many threads do not
/// allocate.
final class ScratchPool<Scratch>: @unchecked Sendable {
    private let lock = Lock()
    private var free: [Scratch] = []
    private let make: () -> Scratch

    init(_ make: @escaping () -> Scratch) { self.make = make }

    func withScratch<T>(_ body: (Scratch) throws -> T) rethrows -> T {
        let scratch = lock.withLock { free.popLast() } ?? make()
        defer { lock.withLock { free.append(scratch) } }
        return try body(scratch)
    }

    func removeAll() { lock.withLock { free.removeAll() } }
}

/// Runs body(i) for i in 0..<count on `threads` threads, handing out indexes in chunks
/// of `chunk` from a shared counter (so uneven work balances). With one thread, runs
/// in order on the caller's thread.
func parallelFor(_ count: Int, threads: Int, chunk: Int = 1, _ body: (Int) -> Void) {
    guard count > 0 else { return }
    let workers = max(1, min(threads, (count + chunk - 1) / chunk))
    if workers == 1 {
        for i in 0..<count { body(i) }
        return
    }
    let counter = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
    counter.initialize(to: 0)
    defer { counter.deallocate() }
    withoutActuallyEscaping(body) { body in
        // The body and counter are shared on purpose: callers give each i its own
        // output slots or lock what they share.
        let shared = UncheckedSendable((body, counter))
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            let (body, counter) = shared.value
            while true {
                let start = Int(vk_fetch_add(counter, UInt64(chunk)))
                if start >= count { break }
                for i in start..<min(count, start + chunk) { body(i) }
            }
        }
    }
}
