package dev.slmkit.routing

import ai.onnxruntime.genai.Generator
import ai.onnxruntime.genai.GeneratorParams
import ai.onnxruntime.genai.Model
import ai.onnxruntime.genai.Tokenizer

/**
 * The on-device tier on Android: the bundle's int4 ONNX model through onnxruntime-genai (greedy,
 * like the simulator's llama.cpp tier). The chat template is the bundle's `chat_format.json`
 * (per-role prefix/suffix strings rendered by `slmkit package` from the model's own Jinja
 * template), so no template engine runs on the phone.
 */
class GenAiEngine(modelDir: String, private val format: ChatFormat) : TierEngine {
    private val model = Model(modelDir)
    private val tokenizer = Tokenizer(model)

    override fun generate(messages: List<Message>, maxTokens: Int): Generation {
        val start = System.nanoTime()
        val prompt = format.render(messages)
        val ids = tokenizer.encode(prompt).getSequence(0)
        val params = GeneratorParams(model)
        val promptTokens = ids.size
        params.setSearchOption("max_length", (promptTokens + maxTokens).toDouble())
        params.setSearchOption("do_sample", false)
        val generator = Generator(model, params)
        try {
            generator.appendTokens(ids)
            val stream = tokenizer.createStream()
            val text = StringBuilder()
            var produced = 0
            while (!generator.isDone && produced < maxTokens) {
                generator.generateNextToken()
                val token = generator.getLastTokenInSequence(0)
                text.append(stream.decode(token))
                produced++
                if (format.stops.any { text.endsWith(it) }) break
            }
            var answer = text.toString()
            format.stops.forEach { answer = answer.removeSuffix(it) }
            return Generation(answer.trim(), promptTokens, produced, (System.nanoTime() - start) / 1e6, "onnxruntime-genai")
        } catch (e: Exception) {
            throw TierException("onnxruntime-genai failed: ${e.message}")
        } finally {
            generator.close()
            params.close()
        }
    }

    override fun close() {
        tokenizer.close()
        model.close()
    }
}
