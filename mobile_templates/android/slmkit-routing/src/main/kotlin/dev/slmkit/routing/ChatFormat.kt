package dev.slmkit.routing

/**
 * A chat template flattened to strings (`chat_format.json`, written by `slmkit package` by
 * rendering the model's own Jinja template around marker messages): what goes before and after
 * each role's content, the generation prompt, and the strings that end an answer.
 */
class ChatFormat(val bos: String, val prefix: Map<String, String>, val suffix: Map<String, String>,
                 val generationPrompt: String, val stops: List<String>, val systemAsUserPrefix: Boolean) {
    fun render(messages: List<Message>): String {
        val out = StringBuilder(bos)
        var pendingSystem = ""
        for (m in messages) {
            if (m.role == "system" && systemAsUserPrefix) { pendingSystem = m.content + "\n\n"; continue }
            val content = if (m.role == "user" && pendingSystem.isNotEmpty()) (pendingSystem + m.content).also { pendingSystem = "" } else m.content
            out.append(prefix[m.role] ?: "").append(content).append(suffix[m.role] ?: "")
        }
        return out.append(generationPrompt).toString()
    }

    companion object {
        fun parse(text: String): ChatFormat {
            val o = Json.parse(text).obj("chat_format.json")
            return ChatFormat(o["bos"].str("bos"), o["prefix"].obj("prefix").mapValues { it.value.str() },
                o["suffix"].obj("suffix").mapValues { it.value.str() }, o["generation_prompt"].str("generation_prompt"),
                o["stops"].list("stops").map { it.str() }, o["system_as_user_prefix"] == true)
        }
    }
}
