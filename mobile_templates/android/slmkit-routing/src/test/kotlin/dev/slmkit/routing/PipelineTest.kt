package dev.slmkit.routing

import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Test
import java.io.File
import java.util.concurrent.ConcurrentLinkedQueue
import java.util.concurrent.CountDownLatch
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger

/** The pipeline's engine lifetime: loaded once under concurrent requests, closed once, never reloaded. */
class PipelineTest {
    private val spec = RoutingSpec.parse(File(System.getProperty("slmkit.spec") ?: "src/test/resources/routing.json").readText())
    private val router = object : Router {
        override val method = "fixed"
        override fun decide(request: Request) = RouteDecision("simple", 0.99, method = method)
    }
    private val loaded = ConcurrentLinkedQueue<String>()
    private val closes = AtomicInteger()

    private fun pipeline(loading: CountDownLatch? = null) = Pipeline(spec, router) { tier ->
        loaded.add(tier.name)
        loading?.await(10, TimeUnit.SECONDS)
        object : TierEngine {
            override fun generate(messages: List<Message>, maxTokens: Int) = Generation("answer", 10, 5, 1.0, tier.name)
            override fun close() { closes.incrementAndGet() }
        }
    }

    @Test
    fun aClosedPipelineRefusesRequestsAndNeverReloadsAnEngine() {
        val pipeline = pipeline()
        assertTrue(pipeline.handle(Request("What is 2 + 2?")).ok)
        val engines = loaded.size
        assertTrue(engines > 0)
        pipeline.close()
        pipeline.close()  // idempotent
        assertEquals(engines, closes.get())
        val after = pipeline.handle(Request("What is 2 + 2?"))
        assertFalse(after.ok)
        assertEquals("the pipeline is closed", after.error)
        assertEquals(engines, loaded.size)
    }

    @Test
    fun concurrentRequestsLoadEachEngineOnce() {
        val gate = CountDownLatch(1)
        val pipeline = pipeline(gate)
        val pool = Executors.newFixedThreadPool(8)
        val answers = (1..16).map { pool.submit<Response> { pipeline.handle(Request("What is 2 + 2?")) } }
        Thread.sleep(100)
        gate.countDown()
        assertTrue(answers.all { it.get(30, TimeUnit.SECONDS).ok })
        pool.shutdown()
        assertEquals(loaded.toSet().size, loaded.size)  // no tier loaded twice
        pipeline.close()
        assertEquals(loaded.size, closes.get())
    }

    @Test
    fun anEngineThatFinishesLoadingAfterCloseIsClosedNotKept() {
        val gate = CountDownLatch(1)
        val pipeline = pipeline(gate)
        val pool = Executors.newSingleThreadExecutor()
        val answer = pool.submit<Response> { pipeline.handle(Request("What is 2 + 2?")) }
        while (loaded.isEmpty()) Thread.sleep(1)
        pipeline.close()
        gate.countDown()
        val response = answer.get(30, TimeUnit.SECONDS)
        pool.shutdown()
        assertFalse(response.ok)
        assertEquals(1, closes.get())
    }

    @Test
    fun closeRacingRequestsNeverThrowsAndLeavesNoEngineOpen() {
        val pool = Executors.newFixedThreadPool(3)
        repeat(2000) {
            loaded.clear()
            closes.set(0)
            val pipeline = pipeline()
            val start = CountDownLatch(1)
            val requests = (1..2).map { pool.submit<Response> { start.await(); pipeline.handle(Request("What is 2 + 2?")) } }
            val closing = pool.submit { start.await(); pipeline.close() }
            start.countDown()
            closing.get(30, TimeUnit.SECONDS)   // throws if close() threw
            requests.forEach { it.get(30, TimeUnit.SECONDS) }
            assertEquals(loaded.size, closes.get())   // the racing close() alone closed every engine loaded
        }
        pool.shutdown()
    }
}
