// Fake of the part of onnxruntime-genai's Java API that GenAiEngine.kt uses: those members with the signatures and
// visibility of src/java/src/main/java/ai/onnxruntime/genai in its sources (0.16-dev, the newest the source mirror
// holds; the pinned release's AAR is compiled against by the Gradle build in .github/workflows/android.yml), and
// nothing the API lacks, so a member GenAiEngine needs but the API lacks fails to compile. genai_engine_check/ drives GenAiEngine
// through FakeNative (test controls, not part of the library).
package ai.onnxruntime.genai;

import java.util.concurrent.atomic.AtomicInteger;

/** Test controls and counters for the fakes; not part of onnxruntime-genai (GenAiEngine never names it). */
public final class FakeNative {
  public static final AtomicInteger open = new AtomicInteger();        // native objects alive
  public static volatile int promptTokens = 5;
  public static volatile String failAt = "";                         // model, link, tokenizer, encode, params, generator, stream, append, next
  public static volatile long tokenDelayMs = 0;
  public static volatile double maxLength = -1;                     // the last max_length search option set
  public static volatile int generating = 0;                        // decode steps running now
  public static volatile boolean freedWhileGenerating = false;     // a model closed under a running decode step

  public static void reset() { failAt = ""; promptTokens = 5; tokenDelayMs = 0; maxLength = -1; freedWhileGenerating = false; }

  static void check(String where) throws GenAIException {
    if (failAt.equals(where)) throw new GenAIException("fake failure at " + where);
  }

  private FakeNative() {}
}
