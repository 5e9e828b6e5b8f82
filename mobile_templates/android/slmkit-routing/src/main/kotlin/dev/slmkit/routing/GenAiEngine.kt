package dev.slmkit.routing

import ai.onnxruntime.genai.GenAIException
import ai.onnxruntime.genai.Generator
import ai.onnxruntime.genai.GeneratorParams
import ai.onnxruntime.genai.Model
import ai.onnxruntime.genai.Tokenizer
import java.util.concurrent.locks.ReentrantReadWriteLock
import kotlin.concurrent.read
import kotlin.concurrent.write

/**
 * The on-device tier on Android: the bundle's int4 ONNX model through onnxruntime-genai (greedy, like the
 * simulator's llama.cpp tier). The chat template is the bundle's `chat_format.json` (per-role strings
 * rendered by `slmkit package` from the model's own Jinja template), so no template engine runs on the phone.
 *
 * Every native object (sequences, parameters, generator, tokenizer stream) is closed on every path. Any
 * failure of onnxruntime-genai — a prompt longer than the context, a model that does not load, the native
 * library missing on the device (a LinkageError) — is a TierException, so the pipeline falls through to the
 * next tier. Generations may run on several threads at once; `close()` stops them at their next token and
 * waits for that before freeing the model: one decode step, or the rest of a prompt's prefill (a single native
 * call) when it lands during one — call it off the main thread. Interrupting the calling
 * thread cancels a generation between two tokens. `contextTokens` (the tier's
 * context_tokens) bounds prompt + answer as the Python runtime does (runtime/backends/genai.py): a longer
 * prompt is refused (the pipeline falls through) and the answer is cut to the room left.
 */
class GenAiEngine(modelDir: String, private val format: ChatFormat, private val contextTokens: Int) : TierEngine {
    private val lock = ReentrantReadWriteLock()
    private var closed = false
    @Volatile private var closing = false   // set before close() takes the lock: running generations stop at the next token
    private val model: Model = native("cannot load the model in $modelDir") { Model(modelDir) }
    private val tokenizer: Tokenizer = try {
        native("cannot load the tokenizer") { Tokenizer(model) }
    } catch (e: TierException) {
        model.close()
        throw e
    }

    override fun generate(messages: List<Message>, maxTokens: Int): Generation = lock.read {
        if (closed || closing) throw TierException("the on-device engine is closed")
        val start = System.nanoTime()
        val prompt = format.render(messages)
        native("onnxruntime-genai failed") {
            tokenizer.encode(prompt).use { sequences ->
                val ids = sequences.getSequence(0)
                val room = contextTokens - ids.size
                if (room < 1) throw TierException("prompt of ${ids.size} tokens does not fit the $contextTokens-token context")
                val budget = minOf(maxTokens, room)
                GeneratorParams(model).use { params ->
                    params.setSearchOption("max_length", (ids.size + budget).toDouble())
                    params.setSearchOption("do_sample", false)
                    Generator(model, params).use { generator ->
                        tokenizer.createStream().use { stream ->
                            generator.appendTokens(ids)
                            val text = StringBuilder()
                            var produced = 0
                            while (!generator.isDone && produced < budget) {
                                if (Thread.currentThread().isInterrupted) throw TierException("cancelled")
                                if (closing) throw TierException("the on-device engine is closing")
                                generator.generateNextToken()
                                text.append(stream.decode(generator.getLastTokenInSequence(0)))
                                produced++
                                if (format.stops.any { text.endsWith(it) }) break
                            }
                            var answer = text.toString()
                            format.stops.forEach { answer = answer.removeSuffix(it) }
                            Generation(answer.trim(), ids.size, produced, (System.nanoTime() - start) / 1e6, "onnxruntime-genai")
                        }
                    }
                }
            }
        }
    }

    override fun close() {
        closing = true
        lock.write { release() }
    }

    private fun release() {
        if (!closed) {
            closed = true
            tokenizer.close()
            model.close()
        }
    }

    private inline fun <T> native(what: String, block: () -> T): T = try {
        block()
    } catch (e: TierException) {
        throw e
    } catch (e: GenAIException) {
        throw TierException("$what: ${e.message}")
    } catch (e: LinkageError) {
        throw TierException("$what: native library: ${e.message}")
    }
}
