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

    /// `.../points/delete` is its own route (POST); `.../points/{id}` also matches the path but
    /// is less specific: `Allow` lists exactly the methods of the route the path names.
    @Test func allowListsTheMethodsOfTheMostSpecificRoute() async {
        var router = Router()
        router.post("/c/{name}/points/delete") { _ in .json(.ok, #"{"deleted":0}"#) }
        router.get("/c/{name}/points/{id}") { request in .json(.ok, #"{"id":"\#(request.pathParameters["id"]!)"}"#) }
        router.post("/c/{name}/points") { _ in .json(.ok, "{}") }
        let options = await response(router, "OPTIONS", "/c/books/points/delete")
        #expect(options.status == .methodNotAllowed)
        #expect(options.headers.first(name: "allow") == "POST")
        #expect(await response(router, "PUT", "/c/books/points/p1").headers.first(name: "allow") == "GET")
        #expect(await body(response(router, "POST", "/c/books/points/delete")) == #"{"deleted":0}"#)
        // A GET of that path still reaches the point route (a point may be named "delete").
        #expect(await body(response(router, "GET", "/c/books/points/delete")) == #"{"id":"delete"}"#)
        // A literal path shadows every pattern, in Allow too.
        router.get("/c/fixed/points/x") { _ in .json(.ok, "{}") }
        #expect(await response(router, "POST", "/c/fixed/points/x").headers.first(name: "allow") == "GET")
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

    @Test func constantRouteAnswersWithoutARequestOnlyForItsExactPathAndMethod() async {
        final class Box: @unchecked Sendable { var outcomes: [RequestOutcome] = [] }
        let box = Box()
        var router = Router()
        router.add("GET", "/live", .constant(.json(.ok, #"{"status":"ok"}"#)))
        router.observer = { box.outcomes.append($0) }

        let direct = router.constantAnswer(method: "GET", path: "/live", version: .http2)
        #expect(direct?.status == 200 && direct?.response.status == .ok)
        #expect(direct.map { body($0.response) } == #"{"status":"ok"}"#)
        #expect(direct.map { String(buffer: $0.body) } == #"{"status":"ok"}"#)
        #expect(direct?.response.preparedHTTP2Headers != nil)
        // Anything else goes through dispatch, which gives the same answer where the route matches.
        #expect(router.constantAnswer(method: "GET", path: "/live/", version: .http2) == nil)
        #expect(router.constantAnswer(method: "GET", path: "/live?x=1", version: .http2) == nil)
        #expect(router.constantAnswer(method: "POST", path: "/live", version: .http2) == nil)
        #expect(await body(response(router, "GET", "/live/")) == #"{"status":"ok"}"#)
        #expect(await body(response(router, "GET", "/live?x=1")) == #"{"status":"ok"}"#)
        #expect(await response(router, "POST", "/live").status == .methodNotAllowed)

        #expect(box.outcomes.map(\.route) == ["/live", "/live", "/live", "unmatched"])
        #expect(box.outcomes.map(\.status) == [200, 200, 200, 405])
        #expect(box.outcomes.prefix(3).allSatisfy { $0.seconds == 0 && $0.routeID != nil })
    }

    @Test func constantRouteIsReplacedLikeAnyOtherAndAuthorizerDisablesTheShortcut() async {
        var router = Router()
        router.add("GET", "/live", .constant(.json(.ok, #"{"v":1}"#)))
        router.add("GET", "/live", .inline { _ in .json(.ok, #"{"v":2}"#) })
        #expect(router.constantAnswer(method: "GET", path: "/live", version: .http2) == nil)
        #expect(await body(response(router, "GET", "/live")) == #"{"v":2}"#)

        router.add("GET", "/live", .constant(.json(.ok, #"{"v":3}"#)))
        #expect(router.constantAnswer(method: "GET", path: "/live", version: .http2).map { body($0.response) } == #"{"v":3}"#)
        router.authorizer = { _ in HTTPError(.unauthorized, code: "unauthorized", message: "no") }
        #expect(router.constantAnswer(method: "GET", path: "/live", version: .http2) == nil)
        #expect(await response(router, "GET", "/live").status == .unauthorized)
    }
}
