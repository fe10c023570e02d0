import NIOCore
import Testing
@testable import VecShardHTTP

@Suite struct RouterTests {
    private func response(_ router: Router, _ method: String, _ target: String) async -> ServerResponse {
        let request = ServerRequest(method: method, target: target, headers: [:], body: ByteBuffer(), version: .http1)
        switch router.dispatch(request) {
        case .now(let r): return r
        case .later(let work): return await work()
        }
    }

    private func body(_ r: ServerResponse) -> String {
        guard case .buffer(let b) = r.body else { return "" }
        return String(buffer: b)
    }

    @Test func literalAndParameterRoutes() async {
        let router = makeTestRouter()
        #expect(await response(router, "GET", "/healthz").status == .ok)
        let item = await response(router, "GET", "/items/a%2Fb?x=1")
        #expect(item.status == .ok)
        #expect(body(item) == #"{"id":"a/b"}"#)
    }

    @Test func unknownPathIs404WithJSONError() async {
        let r = await response(makeTestRouter(), "GET", "/nope")
        #expect(r.status == .notFound)
        #expect(body(r).contains(#""code":"not_found""#))
        #expect(body(r).contains("GET /nope"))
    }

    @Test func wrongMethodIs405WithAllowHeader() async {
        let r = await response(makeTestRouter(), "DELETE", "/items/7")
        #expect(r.status == .methodNotAllowed)
        #expect(r.headers.first(name: "allow") == "GET")
        #expect(body(r).contains(#""code":"method_not_allowed""#))
    }

    @Test func thrownErrorsBecomeJSONWithTheirStatus() async {
        var router = Router()
        router.get("/fail") { _ in throw HTTPError.badRequest("field \"k\" must be 1...10000, got 0") }
        let r = await response(router, "GET", "/fail")
        #expect(r.status == .badRequest)
        #expect(body(r) == #"{"error":{"code":"bad_request","message":"field \"k\" must be 1...10000, got 0"}}"#)
    }

    @Test func observerSeesRoutePatternAndStatus() async {
        final class Box: @unchecked Sendable { var outcomes: [RequestOutcome] = [] }
        let box = Box()
        var router = makeTestRouter()
        router.observer = { box.outcomes.append($0) }
        _ = await response(router, "GET", "/items/42")
        _ = await response(router, "GET", "/missing")
        #expect(box.outcomes.map(\.route) == ["/items/{id}", "unmatched"])
        #expect(box.outcomes.map(\.status) == [200, 404])
    }

    @Test func queryParametersArePercentDecoded() {
        let request = ServerRequest(method: "GET", target: "/x?a=1&name=hello%20world&flag", headers: [:], body: ByteBuffer(), version: .http1)
        #expect(request.path == "/x")
        #expect(request.queryParameter("name") == "hello world")
        #expect(request.queryParameter("flag") == "")
        #expect(request.queryParameter("zzz") == nil)
    }
}
