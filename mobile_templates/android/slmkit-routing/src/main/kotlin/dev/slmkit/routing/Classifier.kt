package dev.slmkit.routing

import java.security.MessageDigest

/**
 * The `classifier` router with a `hashed-v1` head (runtime/router/head.py): hashed n-grams and
 * length numbers through a linear layer stored as JSON + raw little-endian float16.
 * Heads trained with a sentence encoder (`hashed-v1+encoder`) are refused: `slmkit package`
 * ships the n-gram head to phones.
 */
class LinearHead(val labels: List<String>, val buckets: Int, val dense: List<String>, private val weights: FloatArray,
                 private val outputs: Int, val bias: DoubleArray,
                 /** A task-category head: category -> the routing label it counts toward (null: labels are tiers). */
                 val labelGroups: Map<String, String>? = null) {
    fun logits(sparse: Map<Int, Double>, denseValues: List<Double>): List<Double> {
        val out = bias.copyOf()
        for ((index, value) in sparse) for (j in 0 until outputs) out[j] += value * weights[index * outputs + j]
        for ((k, value) in denseValues.withIndex()) for (j in 0 until outputs) out[j] += value * weights[(buckets + k) * outputs + j]
        return out.toList()
    }

    companion object {
        const val FORMAT = "slmkit-router-head"
        /** HeadHeader's fields (runtime/router/head.py); any other is refused, as there (extra="forbid"). */
        private val FIELDS = setOf("format", "version", "features", "labels", "buckets", "dense", "shape", "bias",
            "weights_file", "weights_sha256", "info", "label_groups")

        /** runtime/validation.py `relative_inside`: a normalised relative path inside its folder (no `..`, `~`, `\\`). */
        fun isRelativeInside(path: String): Boolean = path.isNotEmpty() && !path.startsWith("/") && !path.startsWith("~") &&
            '\\' !in path && '\u0000' !in path && path.split("/").all { it.isNotEmpty() && it != "." && it != ".." }

        /**
         * The header (JSON, read as Python's json.loads reads it) and the float16 weights it describes, checked
         * as runtime/router/head.py `HeadHeader` and `head_from` check them: format and version 1, at least two
         * unique labels, integer buckets and shape, one weight column and one finite bias per label, sha256 and
         * size of the weights. This port computes hashed-v1 only, so the rows must be exactly buckets + dense.
         * Throws JsonException naming the first problem (vectors/router_head.jsonl).
         */
        fun load(headerJson: String, blob: ByteArray): LinearHead {
            fun bad(why: String) = JsonException("router head: $why")
            val h = Json.parse(headerJson, integers = true).obj("router head")
            if (h["format"] != FORMAT || h["version"] != 1L) throw bad("not a router head (format $FORMAT, version 1)")
            h.keys.firstOrNull { it !in FIELDS }?.let { throw bad("unknown field $it") }
            val file = h["weights_file"] as? String
            if (file == null || !isRelativeInside(file)) throw bad("weights_file must be a relative path inside the head's folder")
            if ("info" in h && h["info"] !is Map<*, *>) throw bad("info must be an object")
            if (h["features"] != "hashed-v1") throw bad("features ${h["features"]}: this port computes hashed-v1 only")
            val labels = (h["labels"] as? List<*>)?.takeIf { l -> l.all { it is String } }?.map { it as String }
            if (labels == null || labels.size < 2 ||
                labels.map { java.text.Normalizer.normalize(it, java.text.Normalizer.Form.NFC) }.toSet().size != labels.size) {
                throw bad("labels must be at least two unique strings (also after Unicode normalization)")
            }
            val buckets = (h["buckets"] as? Long)?.takeIf { it in 1..Int.MAX_VALUE }?.toInt()
                ?: throw bad("buckets must be an integer >= 1 (hashed features)")
            val dense = (h["dense"] as? List<*>)?.takeIf { l -> l.all { it is String } }?.map { it as String }
                ?: throw bad("dense must be a list of feature names")
            val shape = (h["shape"] as? List<*>)?.takeIf { l -> l.size == 2 && l.all { it is Long && it in 0..Int.MAX_VALUE } }
                ?.map { (it as Long).toInt() } ?: throw bad("shape must be two integers")
            if (shape[0] != buckets + dense.size) throw bad("shape $shape needs $buckets buckets + ${dense.size} dense rows")
            val bias = (h["bias"] as? List<*>)?.takeIf { l -> l.all { it is Number } }?.map { (it as Number).toDouble() }
                ?: throw bad("bias must be a list of numbers")
            if (!bias.all { it.isFinite() }) throw bad("biases must be finite numbers")
            if (shape[1] != labels.size || bias.size != labels.size) throw bad("shape $shape and ${bias.size} biases need one column per label (${labels.size})")
            val groups = when (val g = h["label_groups"]) {
                null -> null
                is Map<*, *> -> g.entries.associate { (k, v) -> k.str() to ((v as? String) ?: throw bad("label_groups must map names to labels")) }
                else -> throw bad("label_groups must be an object")
            }
            val digest = MessageDigest.getInstance("SHA-256").digest(blob).joinToString("") { String.format("%02x", it) }
            if (digest != h["weights_sha256"]) throw bad("${h["weights_file"]} does not match its sha256: truncated or replaced")
            val bytes = 2L * shape[0] * shape[1]
            if (blob.size.toLong() != bytes) throw bad("weights hold ${blob.size} bytes, shape $shape needs $bytes")
            val weights = FloatArray(shape[0] * shape[1]) { i ->
                halfToFloat((blob[2 * i].toInt() and 0xFF) or ((blob[2 * i + 1].toInt() and 0xFF) shl 8))
            }
            return LinearHead(labels, buckets, dense, weights, shape[1], bias.toDoubleArray(), groups)
        }

        /** IEEE 754 binary16 -> binary32 (subnormals, infinities and NaN included). */
        fun halfToFloat(bits: Int): Float {
            val sign = if (bits and 0x8000 != 0) -1f else 1f
            val exponent = (bits shr 10) and 0x1F
            val mantissa = bits and 0x3FF
            return when (exponent) {
                0 -> sign * mantissa * Math.pow(2.0, -24.0).toFloat()
                0x1F -> if (mantissa == 0) sign * Float.POSITIVE_INFINITY else Float.NaN
                else -> sign * (1 + mantissa / 1024f) * Math.pow(2.0, (exponent - 15).toDouble()).toFloat()
            }
        }
    }
}

class ClassifierRouter(private val spec: RouterSpec, private val head: LinearHead) : Router {
    override val method = "classifier"

    init {
        if (head.dense != listOf("log_user_chars", "log_user_lines", "log_system_chars", "digit_share"))
            throw JsonException("head dense features ${head.dense} differ from this port's")
        val routed = head.labelGroups?.let { g -> if (g.keys.sorted() != head.labels.sorted()) null else g.values.toSet().sorted() }
            ?: head.labels.sorted()
        if (routed != spec.labels.sorted()) throw JsonException("head labels ${head.labels} (${head.labelGroups}) != spec labels ${spec.labels}")
    }

    override fun decide(request: Request): RouteDecision {
        val start = System.nanoTime()
        val (system, user) = Prompts.requestRouterInput(request, spec.truncation)
        val text = Features.classifierText(system, user)
        val dense = Features.dense(request.system, Prompts.conversationUser(request, spec.truncation))
        val logits = head.logits(Features.hashed(text, head.buckets), dense)
        val groups = head.labelGroups
        val decision = if (groups == null) Decisions.fromLogits(head.labels, logits, spec.temperature, method)
            else Decisions.fromGroupedLogits(spec.labels, head.labels, logits, groups, spec.temperature, method)
        return decision.copy(latencyMs = (System.nanoTime() - start) / 1e6)
    }
}
