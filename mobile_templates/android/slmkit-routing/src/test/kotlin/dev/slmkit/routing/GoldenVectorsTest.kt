package dev.slmkit.routing

import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import java.io.File

/** The bundle's golden vectors through this port: the same files the Python runtime passes. */
class GoldenVectorsTest {
    private val vectors = File(System.getProperty("slmkit.vectors") ?: "src/test/resources/vectors")

    @Test
    fun everyVectorPasses() {
        val outcomes = GoldenVectors.run(vectors)
        val failures = outcomes.filter { !it.passed }.map { "${it.file} ${it.name}: ${it.detail}" }
        assertTrue("no vectors found in $vectors", outcomes.isNotEmpty())
        assertEquals("", failures.joinToString("\n"))
    }

    @Test
    fun theBundledSpecLoadsAndFallsThrough() {
        val spec = RoutingSpec.parse(File(System.getProperty("slmkit.spec") ?: "src/test/resources/routing.json").readText())
        val router = object : Router {
            override val method = "fixed"
            override fun decide(request: Request) = RouteDecision("complex", 0.99, method = method)
        }
        val pipeline = Pipeline(spec, router) { tier -> object : TierEngine {
            override fun generate(messages: List<Message>, maxTokens: Int): Generation =
                if (tier.name == spec.policy.routes.first { it.label == "complex" }.tier) throw TierException("HTTP 503")
                else Generation("fallback answer", 10, 5, 1.0, tier.name)
        } }
        val response = pipeline.handle(Request("Prove Fermat's little theorem."))
        assertTrue(response.ok)
        assertEquals("fallback answer", response.text)
        assertEquals(1, response.trace.fallbacks.size)
    }
}
