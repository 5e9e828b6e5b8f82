package dev.slmkit.routing

import java.io.IOException
import java.net.HttpURLConnection
import java.net.SocketTimeoutException
import java.net.URI

/**
 * Cloud tiers over HttpURLConnection (no extra dependency): any OpenAI-compatible
 * `/chat/completions`, and the Anthropic Messages API. Keys come from the app at run time, looked up
 * by the tier's `api_key_env` name — they are never part of the bundle or of a trace.
 */
class CloudEngine(private val tier: TierSpec, private val keys: Map<String, String>) : TierEngine {
    private fun key(): String? {
        val name = tier.apiKeyEnv ?: return null
        return keys[name] ?: throw TierException("no API key '$name' supplied for tier ${tier.name}")
    }

    private fun post(url: String, headers: Map<String, String>, body: Any?): Map<String, Any?> {
        val address = URI(url)  // URL(String) is deprecated from JDK 20; a malformed URL is a tier failure
        val connection = try { address.toURL().openConnection() as HttpURLConnection } catch (e: IOException) {
            throw TierException("cannot reach ${address.authority} (${e.javaClass.simpleName})")
        }
        try {
            connection.requestMethod = "POST"
            connection.connectTimeout = (tier.timeoutS * 1000).toInt()
            connection.readTimeout = (tier.timeoutS * 1000).toInt()
            connection.doOutput = true
            connection.setRequestProperty("content-type", "application/json")
            for ((k, v) in headers) connection.setRequestProperty(k, v)
            connection.outputStream.use { it.write(toJson(body).toByteArray(Charsets.UTF_8)) }
            val status = connection.responseCode
            if (status >= 400) throw TierException("HTTP $status from ${connection.url.host}")
            val text = connection.inputStream.use { it.readBytes().toString(Charsets.UTF_8) }
            val parsed = Json.parseOrNull(text) ?: throw TierException("malformed response: not JSON")
            @Suppress("UNCHECKED_CAST")
            return parsed.value as? Map<String, Any?> ?: throw TierException("malformed response: not a JSON object")
        } catch (e: SocketTimeoutException) {
            throw TierException("timeout after ${tier.timeoutS} s")
        } catch (e: IOException) {
            throw TierException("cannot reach ${connection.url.authority} (${e.javaClass.simpleName})")
        } finally {
            connection.disconnect()
        }
    }

    override fun generate(messages: List<Message>, maxTokens: Int): Generation {
        val start = System.nanoTime()
        return when (tier.backend) {
            "openai" -> {
                val headers = key()?.let { mapOf("Authorization" to "Bearer $it") } ?: emptyMap()
                val body = linkedMapOf("model" to tier.model, "messages" to messages.map { mapOf("role" to it.role, "content" to it.content) },
                    "max_tokens" to maxTokens, "temperature" to 0)
                val data = post(tier.baseUrl!!.trimEnd('/') + "/chat/completions", headers, body)
                try {
                    val text = (data["choices"].list()[0].obj()["message"].obj()["content"] as String?) ?: ""
                    val usage = (data["usage"] as Map<*, *>?) ?: emptyMap<String, Any?>()
                    Generation(text, ((usage["prompt_tokens"] as Double?) ?: 0.0).toInt(), ((usage["completion_tokens"] as Double?) ?: 0.0).toInt(),
                        (System.nanoTime() - start) / 1e6, (data["model"] as String?) ?: tier.model ?: "")
                } catch (e: Exception) {
                    if (e is TierException) throw e
                    throw TierException("malformed response: no choices[0].message.content")
                }
            }
            "anthropic" -> {
                val headers = HashMap<String, String>()
                headers["anthropic-version"] = "2023-06-01"
                key()?.let { headers["x-api-key"] = it }
                val system = messages.filter { it.role == "system" }.joinToString("\n\n") { it.content }
                val body = linkedMapOf<String, Any?>("model" to tier.model, "max_tokens" to maxTokens,
                    "messages" to messages.filter { it.role != "system" }.map { mapOf("role" to it.role, "content" to it.content) })
                if (system.isNotEmpty()) body["system"] = system
                val data = post((tier.baseUrl ?: "https://api.anthropic.com/v1").trimEnd('/') + "/messages", headers, body)
                try {
                    val text = data["content"].list().map { it.obj() }.filter { it["type"] == "text" }.joinToString("") { it["text"].str() }
                    val usage = (data["usage"] as Map<*, *>?) ?: emptyMap<String, Any?>()
                    Generation(text, ((usage["input_tokens"] as Double?) ?: 0.0).toInt(), ((usage["output_tokens"] as Double?) ?: 0.0).toInt(),
                        (System.nanoTime() - start) / 1e6, (data["model"] as String?) ?: tier.model ?: "")
                } catch (e: Exception) {
                    if (e is TierException) throw e
                    throw TierException("malformed response: no content[].text")
                }
            }
            else -> throw TierException("backend ${tier.backend} is not a cloud backend")
        }
    }
}

/** The offline stand-in (runtime/backends/simulated.py): models latency and cost, never pretends to answer. */
class SimulatedEngine(private val tier: TierSpec, private val ttftMs: Double, private val tokensPerS: Double,
                      private val outputTokens: Int) : TierEngine {
    override fun generate(messages: List<Message>, maxTokens: Int): Generation {
        val prompt = messages.sumOf { Math.max(1, (Prompts.codePoints(it.content) + 3) / 4) }
        val output = Math.min(outputTokens, maxTokens)
        val latency = ttftMs + 1000.0 * output / tokensPerS
        val text = "[simulated answer from tier '${tier.name}' (${tier.model ?: "no model"}): no model was called; " +
            "$output output tokens and ${String.format(java.util.Locale.ROOT, "%.0f", latency)} ms are modelled]"
        return Generation(text, prompt, output, latency, tier.model ?: "simulated", simulated = true)
    }
}
