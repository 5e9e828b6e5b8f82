// GenAiEngine.kt driven through the onnxruntime-genai fakes (../genai_fakes): every native object closed on every
// path, each failure a TierException the pipeline falls through, the tier's context honoured, cancellation and
// close() bounded by one decode step. Run by tests/converter/package/test_bundle.py; prints "N passed, M failed".
import ai.onnxruntime.genai.FakeNative
import dev.slmkit.routing.ChatFormat
import dev.slmkit.routing.GenAiEngine
import dev.slmkit.routing.Generation
import dev.slmkit.routing.Message
import dev.slmkit.routing.Pipeline
import dev.slmkit.routing.Request
import dev.slmkit.routing.RouteDecision
import dev.slmkit.routing.Router
import dev.slmkit.routing.RoutingSpec
import dev.slmkit.routing.TierEngine
import dev.slmkit.routing.TierException
import java.io.File
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import kotlin.system.exitProcess

private val failures = mutableListOf<String>()
private var passed = 0

private fun case(name: String, block: () -> Unit) {
    FakeNative.reset()
    val before = FakeNative.open.get()
    try {
        block()
        check(FakeNative.open.get() == before) { "${FakeNative.open.get() - before} native object(s) left open" }
        passed++
    } catch (e: Throwable) {
        failures.add("$name: ${e.javaClass.simpleName}: ${e.message}")
    }
}

private fun reason(block: () -> Unit): String = try {
    block()
    "no TierException"
} catch (e: TierException) {
    e.reason
}

private fun millis(start: Long) = (System.nanoTime() - start) / 1_000_000

fun main(args: Array<String>) {
    val format = ChatFormat.parse(File(args[0]).readText())
    val spec = RoutingSpec.parse(File(args[1]).readText())
    val messages = listOf(Message("user", "What is 2 + 2?"))

    case("an answer of maxTokens tokens") {
        GenAiEngine("model", format, 64).use { engine ->
            val g = engine.generate(messages, 8)
            check(g.inputTokens == 5 && g.outputTokens == 8 && FakeNative.maxLength == 13.0) { "$g, max_length ${FakeNative.maxLength}" }
        }
    }
    case("the answer is cut to the room the tier's context leaves") {
        GenAiEngine("model", format, 10).use { engine ->
            val g = engine.generate(messages, 8)
            check(g.outputTokens == 5 && FakeNative.maxLength == 10.0) { "$g, max_length ${FakeNative.maxLength}" }
        }
    }
    case("a prompt that fills the context is refused") {
        GenAiEngine("model", format, 64).use { engine ->
            FakeNative.promptTokens = 64
            val why = reason { engine.generate(messages, 8) }
            check(why == "prompt of 64 tokens does not fit the 64-token context") { why }
        }
    }
    for (at in listOf("encode", "params", "generator", "stream", "append", "next")) {
        case("onnxruntime-genai failing at $at is a TierException") {
            GenAiEngine("model", format, 64).use { engine ->
                FakeNative.failAt = at
                val why = reason { engine.generate(messages, 8) }
                check(why.startsWith("onnxruntime-genai failed: fake failure at $at")) { why }
            }
        }
    }
    for (at in listOf("model", "tokenizer", "link")) {
        case("a $at that does not load is a TierException") {
            FakeNative.failAt = at
            val why = reason { GenAiEngine("model", format, 64).close() }
            check(why.startsWith("cannot load") && (at != "link" || "native library" in why)) { why }
        }
    }
    case("interrupting the caller cancels between two tokens") {
        GenAiEngine("model", format, 4096).use { engine ->
            FakeNative.tokenDelayMs = 5
            val pool = Executors.newSingleThreadExecutor()
            val running = pool.submit<String> { reason { engine.generate(messages, 1000) } }
            Thread.sleep(50)
            val start = System.nanoTime()
            running.cancel(true)
            pool.shutdown()
            check(pool.awaitTermination(5, TimeUnit.SECONDS) && millis(start) < 500) { "took ${millis(start)} ms" }
        }
    }
    case("close() during a generation stops it at the next token and frees nothing in use") {
        val engine = GenAiEngine("model", format, 4096)
        FakeNative.tokenDelayMs = 20
        val pool = Executors.newSingleThreadExecutor()
        val running = pool.submit<String> { reason { engine.generate(messages, 1000) } }
        Thread.sleep(100)
        val start = System.nanoTime()
        engine.close()
        val waited = millis(start)
        val why = running.get(30, TimeUnit.SECONDS)
        pool.shutdown()
        check(waited < 500) { "close() waited $waited ms for a 1000-token answer" }
        check(why == "the on-device engine is closing" && !FakeNative.freedWhileGenerating) { "$why, freed in use ${FakeNative.freedWhileGenerating}" }
        val after = reason { engine.generate(messages, 4) }
        check(after == "the on-device engine is closed") { after }
    }
    val router = object : Router {
        override val method = "fixed"
        override fun decide(request: Request) = RouteDecision("simple", 0.99, method = method)
    }
    val onDevice = spec.tiers.first { it.onDevice }.name
    for ((name, setUp) in listOf<Pair<String, () -> Unit>>(
        "a prompt too long for the on-device context" to { FakeNative.promptTokens = 100_000 },
        "a native error" to { FakeNative.failAt = "next" },
        "a native library that does not load" to { FakeNative.failAt = "link" })) {
        case("pipeline: $name falls through to the next tier") {
            setUp()
            val pipeline = Pipeline(spec, router) { tier ->
                if (tier.onDevice) GenAiEngine("model", format, tier.contextTokens) else object : TierEngine {
                    override fun generate(messages: List<Message>, maxTokens: Int) = Generation("cloud answer", 1, 1, 1.0, tier.name)
                }
            }
            val response = pipeline.handle(Request("What is 2 + 2?"))
            pipeline.close()
            check(response.ok && response.tier != onDevice && response.trace.fallbacks.firstOrNull()?.get("from") == onDevice) {
                "tier ${response.tier}, error ${response.error}, fallbacks ${response.trace.fallbacks}"
            }
        }
    }
    failures.forEach { println("FAILED $it") }
    println("$passed passed, ${failures.size} failed")
    exitProcess(if (failures.isEmpty()) 0 else 1)
}
