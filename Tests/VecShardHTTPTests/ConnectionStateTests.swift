import Testing
@testable import VecShardHTTP
import VecShardPrimitives

/// The per-connection tables of the HTTP/2 handlers, checked against plain dictionaries.
@Suite struct ConnectionStateTests {
    @Test func streamTableMatchesADictionaryUnderRandomInsertsAndRemovals() {
        var table = HTTP2StreamTable(minimumCapacity: 16)
        var oracle: [Int32: HTTP2ServerStream] = [:]
        var generator = SplitMix64(seed: 7)
        var nextID: Int32 = 1
        for step in 0..<20_000 {
            let open = Array(oracle.keys)
            if open.isEmpty || generator.next() % 3 != 0 {
                // Mostly new streams with increasing odd ids, sometimes far apart (forcing probes).
                nextID += 2 * Int32(generator.next() % 4 == 0 ? generator.next() % 300 + 1 : 1)
                let stream = HTTP2ServerStream(id: nextID)
                table.insert(stream)
                oracle[nextID] = stream
            } else {
                let id = open[Int(generator.next() % UInt64(open.count))]
                #expect(table.remove(id) === oracle.removeValue(forKey: id))
            }
            if oracle.count > 200 { // keep the live set bounded like max concurrent streams
                for id in oracle.keys.prefix(100) { #expect(table.remove(id) === oracle.removeValue(forKey: id)) }
            }
            if step % 500 == 0 {
                #expect(table.count == oracle.count)
                for (id, stream) in oracle { #expect(table[id] === stream) }
                #expect(Set(table.values.map(\.id)) == Set(oracle.keys))
            }
        }
        #expect(table.remove(nextID + 2) == nil)
        #expect(table[nextID + 2] == nil)
        table.removeAll()
        #expect(table.isEmpty && table.values.isEmpty)
    }

    @Test func rawHeaderFieldsGiveBackEveryFieldInOrderAndStartEmptyAfterRemoveAll() {
        func bytes(_ text: String, _ body: (UnsafePointer<UInt8>?, Int) -> Void) {
            Array(text.utf8).withUnsafeBufferPointer { body($0.baseAddress, $0.count) }
        }
        func add(_ fields: inout RawHeaderFields, _ name: String, _ value: String) {
            bytes(name) { n, nl in bytes(value) { v, vl in fields.append(name: n!, nl, value: v, vl) } }
        }
        func setMethod(_ fields: inout RawHeaderFields, _ value: String) { bytes(value) { fields.setMethod($0, $1) } }
        func setPath(_ fields: inout RawHeaderFields, _ value: String) { bytes(value) { fields.setPath($0, $1) } }
        func all(_ fields: borrowing RawHeaderFields) -> [String] {
            var out: [String] = []
            fields.forEach { name, nameLength, value, valueLength in
                out.append(makeString(name, nameLength) + "=" + makeString(value, valueLength))
            }
            return out
        }
        func pseudo(_ fields: borrowing RawHeaderFields) -> [String] {
            fields.withMethodAndPath { m, p in [String(decoding: m, as: UTF8.self), String(decoding: p, as: UTF8.self)] }
        }
        var fields = RawHeaderFields()
        let long = String(repeating: "v", count: 3000) // grows the area past its retained capacity
        setMethod(&fields, "GET")
        add(&fields, "user-agent", "h2load nghttp2/1.52.0")
        add(&fields, "x-empty", "")
        setPath(&fields, "/items/1?x=2")
        add(&fields, "cookie", long)
        add(&fields, "accept", "*/*")
        #expect(fields.count == 4)
        #expect(all(fields) == ["user-agent=h2load nghttp2/1.52.0", "x-empty=", "cookie=" + long, "accept=*/*"])
        #expect(pseudo(fields) == ["GET", "/items/1?x=2"])
        fields.removeAll()
        #expect(fields.count == 0 && all(fields).isEmpty && pseudo(fields) == ["", ""])
        add(&fields, "a", "1")
        setPath(&fields, "/")
        #expect(all(fields) == ["a=1"])
        #expect(pseudo(fields) == ["", "/"])
    }

    @Test func headerFieldCacheReturnsExactlyTheReceivedBytes() {
        var cache = HeaderFieldCache()
        func field(_ name: String, _ value: String) -> (String, String) {
            let n = Array(name.utf8), v = Array(value.utf8)
            return n.withUnsafeBufferPointer { np in
                v.withUnsafeBufferPointer { vp in
                    let f = cache.field(np.baseAddress, np.count, vp.baseAddress, vp.count)
                    return (f.name, f.value)
                }
            }
        }
        #expect(field("user-agent", "h2load nghttp2/1.52.0") == ("user-agent", "h2load nghttp2/1.52.0"))
        #expect(field("user-agent", "h2load nghttp2/1.52.0") == ("user-agent", "h2load nghttp2/1.52.0"))
        #expect(field("user-agent", "curl/7.88") == ("user-agent", "curl/7.88"))
        #expect(field("user-agent", "") == ("user-agent", ""))
        #expect(field("content-type", "application/json") == ("content-type", "application/json"))
        let long = String(repeating: "x", count: HeaderFieldCache.maxValueBytes + 1)
        #expect(field("cookie", long) == ("cookie", long))
        #expect(field("cookie", long) == ("cookie", long))
        #expect(field("cookie", "") == ("cookie", ""))
        // More names than the cache holds: evicted names still decode correctly.
        for i in 0..<(HeaderFieldCache.capacity * 2) {
            #expect(field("x-field-\(i)", "value-\(i)") == ("x-field-\(i)", "value-\(i)"))
        }
        #expect(field("user-agent", "curl/7.88") == ("user-agent", "curl/7.88"))
    }
}

/// `HTTP2BodyBudget` as the state machine it is, against a model of the peer's window.
@Suite struct BodyBudgetStateTests {
    @Test func heldBytesNeverExceedTheConnectionBudgetAndEveryWithheldByteIsGrantedOnceReleased() {
        let load = ServerLoad()
        let limit = 1 << 20, window = 256 * 1024
        var budget = HTTP2BodyBudget(connectionLimit: limit, globalLimit: 1 << 30, window: window, load: load)
        var peerWindow = window, bodies: [Int] = [], generator = SplitMix64(seed: 11)
        for _ in 0..<50_000 {
            switch generator.next() % 4 {
            case 0, 1: // the peer sends what its window allows, kept or discarded
                let n = min(peerWindow, Int(generator.next() % 20_000))
                guard n > 0 else { continue }
                peerWindow -= n
                let kept = generator.next() % 5 != 0
                if kept { bodies.append(n) }
                peerWindow += budget.received(n, kept: kept, load: load)
            case 2: // a body is handed to its handler
                guard !bodies.isEmpty else { continue }
                peerWindow += budget.released(bodies.removeLast(), load: load)
            default:
                peerWindow += budget.grant(load: load)
            }
            #expect(budget.held == bodies.reduce(0, +))
            #expect(budget.held + peerWindow <= limit, "held \(budget.held) + window \(peerWindow)")
            #expect(budget.committed == budget.held + peerWindow)
            #expect(load.stats.bufferedBodyBytes == budget.held)
        }
        while let body = bodies.popLast() { peerWindow += budget.released(body, load: load) }
        #expect(budget.withheld == 0 && peerWindow == window && load.stats.bufferedBodyBytes == 0)
    }

    @Test func theGlobalBudgetStopsGrantsUntilOtherConnectionsRelease() {
        let load = ServerLoad()
        // Both connections' initial windows are committed server-wide, with the bytes held.
        let global = 2 * 65_535 + 60_000
        var a = HTTP2BodyBudget(connectionLimit: 1 << 20, globalLimit: global, window: 65_535, load: load)
        var b = HTTP2BodyBudget(connectionLimit: 1 << 20, globalLimit: global, window: 65_535, load: load)
        #expect(a.received(60_000, kept: true, load: load) == 60_000)
        #expect(b.received(60_000, kept: true, load: load) == 0) // 120000 held server-wide: withheld
        #expect(b.grant(load: load) == 0)
        #expect(a.released(60_000, load: load) == 0)
        #expect(b.grant(load: load) == 60_000) // room again: the throttled connection's tick grants
        #expect(b.received(1000, kept: false, load: load) == 1000) // discarded bytes always come back
    }
}

/// `ConnectionTimeouts` without sockets: which timeout passes at which tick.
@Suite struct ConnectionTimeoutStateTests {
    static var ticks: TimeoutTicks {
        var limits = HTTPServerLimits()
        limits.headerTimeout = .seconds(4)
        limits.bodyTimeout = .seconds(8)
        limits.idleTimeout = .seconds(12) // one tick a second: 4, 8 and 12 ticks
        return TimeoutTicks(limits)
    }

    private func firstExpiry(_ timeouts: inout ConnectionTimeouts, within n: Int) -> (ConnectionTimeouts.Expiry, Int)? {
        for _ in 0..<n { if let e = timeouts.tick() { return (e, timeouts.now) } }
        return nil
    }

    @Test func tickSizesFollowTheShortestTimeout() {
        #expect(Self.ticks.interval == .seconds(1) && Self.ticks.header == 4 && Self.ticks.body == 8 && Self.ticks.idle == 12)
        var short = HTTPServerLimits()
        short.headerTimeout = .milliseconds(200)
        let t = TimeoutTicks(short)
        #expect(t.interval == .milliseconds(50) && t.header == 4 && t.body == 600 && t.idle == 2400)
    }

    @Test func aConnectionWithoutARequestExpiresAtTheHeaderTimeout() {
        var t = ConnectionTimeouts(Self.ticks)
        #expect(firstExpiry(&t, within: 100).map { "\($0.0)@\($0.1)" } == "firstRequest@4")
    }

    @Test func aHeaderBlockThatDoesNotEndExpiresFromItsStart() {
        var t = ConnectionTimeouts(Self.ticks)
        _ = t.tick(); _ = t.tick()
        t.headerStarted()
        #expect(firstExpiry(&t, within: 100).map { "\($0.0)@\($0.1)" } == "header@6")
    }

    @Test func openRequestsNeverIdleAndTheIdleTimeoutRunsFromTheLastOneFinished() {
        var t = ConnectionTimeouts(Self.ticks)
        t.headerStarted()
        t.headerEnded()
        #expect(firstExpiry(&t, within: 50) == nil) // a request open for 50 ticks: no connection timeout
        t.requestsFinished()
        for _ in 0..<5 { _ = t.tick() }
        t.headerStarted() // the next request, 5 ticks later
        t.headerEnded()
        t.requestsFinished()
        #expect(firstExpiry(&t, within: 100).map { "\($0.0)@\($0.1)" } == "idle@67")
    }
}
