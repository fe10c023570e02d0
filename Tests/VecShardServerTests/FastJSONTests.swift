import Foundation
import Testing
import VecShardProto
@testable import VecShardServer

/// The fast request-body decoder against Foundation's JSONDecoder: whenever the fast one accepts a
/// body it must decode exactly what Foundation decodes (it declines everything else, and then
/// Foundation decides and words the error).
@Suite struct FastJSONTests {
    private func fast<T: Decodable>(_ type: T.Type, _ text: String) -> T? {
        Array(text.utf8).withUnsafeBytes { try? FastJSON.decode(T.self, from: $0) }
    }

    private func foundation<T: Decodable>(_ type: T.Type, _ text: String) -> T? {
        try? JSONDecoder().decode(T.self, from: Data(text.utf8))
    }

    private func sameUpsert(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let a = fast(UpsertBody.self, text), b = foundation(UpsertBody.self, text)
        if let a {
            #expect(b != nil, "fast accepted what Foundation refuses: \(text.prefix(200))", sourceLocation: sourceLocation)
            #expect(a.points.map(\.point) == b?.points.map(\.point), "\(text.prefix(200))", sourceLocation: sourceLocation)
        }
    }

    private func sameSearch(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let a = fast(SearchBody.self, text), b = foundation(SearchBody.self, text)
        guard let a else { return }
        guard let b else {
            Issue.record("fast accepted what Foundation refuses: \(text.prefix(200))", sourceLocation: sourceLocation)
            return
        }
        #expect(a.vector == b.vector && a.k == b.k && a.includeVector == b.includeVector && a.includeMetadata == b.includeMetadata
                && a.allowPartial == b.allowPartial, "\(text)", sourceLocation: sourceLocation)
        #expect(a.params?.ef == b.params?.ef && a.params?.nprobe == b.params?.nprobe && a.params?.refine == b.params?.refine
                && a.params?.oversample == b.params?.oversample && a.params?.exact == b.params?.exact, "\(text)", sourceLocation: sourceLocation)
        #expect(a.filter?.mapValues(\.values) == b.filter?.mapValues(\.values), "\(text)", sourceLocation: sourceLocation)
    }

    @Test func acceptsWhatFoundationAcceptsWithTheSameValues() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let dim = Int.random(in: 1...16, using: &rng)
            let points = (0..<Int.random(in: 1...5, using: &rng)).map { i -> String in
                let vector = (0..<dim).map { _ -> String in
                    switch Int.random(in: 0..<5, using: &rng) {
                    case 0: return String(Float.random(in: -1e6...1e6, using: &rng))
                    case 1: return String(Int.random(in: -1000...1000, using: &rng))
                    case 2: return "\(Double.random(in: -1...1, using: &rng))e\(Int.random(in: -30...30, using: &rng))"
                    case 3: return String(Double.random(in: -1...1, using: &rng))
                    default: return "0.1"
                    }
                }
                let metadata = ["\"s\":\"x\\u00e9\\n\\\"y\\\" 😀\"", "\"i\":-42", "\"d\":2.5", "\"b\":true", "\"e\":1e3", "\"f\":5.0", "\"big\":12345678901234567890"]
                    .shuffled(using: &rng).prefix(Int.random(in: 0...4, using: &rng)).joined(separator: ",")
                return "{\"id\":\"p\(i)-é\",\"vector\":[\(vector.joined(separator: " , "))],\"metadata\":{\(metadata)}}"
            }
            sameUpsert("{\"points\":[\(points.joined(separator: ","))]}")
        }
        sameSearch(#"{"vector":[1,2.5,-3e-2],"k":7,"filter":{"category":"books","year":[1999,2000],"ok":true},"params":{"ef":64,"oversample":1.5,"exact":false},"include_vector":true,"allow_partial":false}"#)
        sameSearch(#"{"vector":[0.1, 0.2], "k": 10.0}"#)
        sameSearch(#"{"vector":[1e39], "k": 1}"#)
        sameSearch(#" { "vector" : [ -0 , 0.0 , 1E+2 ] } "#)
    }

    @Test func declinesWhatFoundationRefuses() {
        for bad in [#"{"points":[{"id":"a","vector":[1,2,]}]}"#, #"{"points":[{"id":"a","vector":[01]}]}"#, #"{"points":[{"id":"a","vector":[1.]}]}"#,
                    #"{"points":[{"id":"a","vector":[NaN]}]}"#, #"{"points":[{"id":"a","vector":[1],"metadata":{"x":null}}]}"#,
                    #"{"points":[{"id":"\ud800","vector":[1]}]}"#, #"{"points":[{"id":"a","vector":["1"]}]}"#, #"{"points":[]} x"#,
                    #"{"points":[{"id":"a","vector":[1e400]}]}"#, #"{"points":[{"id":"a","vector":[1]}"#,
                    "{\"points\":[{\"id\":\"a\u{1}\",\"vector\":[1]}]}", String(repeating: "[", count: 600)] {
            #expect(fast(UpsertBody.self, bad) == nil, "fast accepted \(bad.prefix(80))")
        }
        // Escapes that are fine: decoded like Foundation.
        sameUpsert(#"{"points":[{"id":"a\u0001\/\\","vector":[1]}]}"#)
        sameUpsert(#"{"points":[{"id":"\ud83d\ude00","vector":[1]}]}"#)
    }
}
