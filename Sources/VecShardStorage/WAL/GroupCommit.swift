/// The group-commit protocol of a WAL, without I/O: writers submit encoded records; one
/// flush at a time writes every record queued so far and makes them durable with one
/// fsync; then every writer of that group is answered. Writers that arrive during a
/// flush form the next group. The shell (`WriteAheadLog`) holds this under its lock and
/// performs the actions it returns.
///
/// LSNs are assigned when a group is taken, in queue order, so they follow the order in
/// the file. A group that failed without reaching the disk (disk full, cut back) gives
/// its LSNs back; a failure that may have left the file in an unknown state (fsync
/// error) fails the log for good.
struct GroupCommit<Waiter> {
    struct Pending {
        var payload: [UInt8]
        var payloadHash: UInt64
        var operation: WALOperation
        var waiter: Waiter
    }

    /// Records to write together; record i has LSN firstLSN + i.
    struct Group {
        var firstLSN: UInt64
        var entries: [Pending]
        var lastLSN: UInt64 { firstLSN + UInt64(entries.count) - 1 }
        var payloadBytes: Int { entries.reduce(0) { $0 + $1.payload.count } }
    }

    enum SubmitAction {
        /// Start a flush of this group (the caller becomes the flusher).
        case flush(Group)
        /// A flush is running; the writer is answered when its group is done.
        case wait
        /// The log is failed or closed; answer the writer with this error at once.
        case reject(StorageError)
    }

    /// How a flush ended.
    enum FlushOutcome {
        case durable
        /// Nothing of the group reached the file (it was cut back); the log stays usable.
        case refused(StorageError)
        /// The file's state is unknown; the log refuses every later write.
        case failed(StorageError)
    }

    struct AfterFlush {
        /// Writers of the finished group and, after a permanent failure, queued writers too.
        var answered: [Waiter]
        var error: StorageError?
        /// The next group to flush, if writers queued meanwhile.
        var next: Group?
    }

    private(set) var nextLSN: UInt64
    private var queue: [Pending] = []
    private(set) var isFlushing = false
    private(set) var failure: StorageError?
    private var closed = false
    /// Largest group in payload bytes (a group takes at least one record).
    let maxGroupBytes: Int

    init(nextLSN: UInt64, maxGroupBytes: Int = 64 << 20) {
        self.nextLSN = nextLSN
        self.maxGroupBytes = maxGroupBytes
    }

    var queuedCount: Int { queue.count }

    mutating func submit(_ pending: Pending) -> SubmitAction {
        if let failure { return .reject(failure) }
        if closed { return .reject(.unavailable("the collection is closing; the write was not applied")) }
        queue.append(pending)
        if isFlushing { return .wait }
        isFlushing = true
        return .flush(takeGroup())
    }

    private mutating func takeGroup() -> Group {
        var bytes = 0
        var n = 0
        while n < queue.count, n == 0 || bytes + queue[n].payload.count <= maxGroupBytes {
            bytes += queue[n].payload.count
            n += 1
        }
        let group = Group(firstLSN: nextLSN, entries: Array(queue.prefix(n)))
        queue.removeFirst(n)
        nextLSN += UInt64(n)
        return group
    }

    mutating func flushFinished(_ group: Group, _ outcome: FlushOutcome) -> AfterFlush {
        precondition(isFlushing)
        var result = AfterFlush(answered: group.entries.map(\.waiter), error: nil, next: nil)
        switch outcome {
        case .durable:
            break
        case let .refused(error):
            result.error = error
            if nextLSN == group.lastLSN + 1 { nextLSN = group.firstLSN }
            // LSNs of queued writers are assigned later, so giving these back is safe.
        case let .failed(error):
            result.error = error
            failure = error
            result.answered += queue.map(\.waiter)
            queue.removeAll()
        }
        if failure == nil, !queue.isEmpty {
            let next = takeGroup()
            result.next = next
        } else {
            isFlushing = false
        }
        return result
    }

    /// Refuses later writes. Returns true when no flush is running (the log is idle).
    mutating func close() -> Bool {
        closed = true
        return !isFlushing
    }
}
