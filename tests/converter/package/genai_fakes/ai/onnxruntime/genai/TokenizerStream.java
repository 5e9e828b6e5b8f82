// Fake of the part of onnxruntime-genai's Java API that GenAiEngine.kt uses: those members with the signatures and
// visibility of src/java/src/main/java/ai/onnxruntime/genai in its sources (0.16-dev, the newest the source mirror
// holds; the pinned release's AAR is compiled against by the Gradle build in .github/workflows/android.yml), and
// nothing the API lacks, so a member GenAiEngine needs but the API lacks fails to compile. genai_engine_check/ drives GenAiEngine
// through FakeNative (test controls, not part of the library).
package ai.onnxruntime.genai;

public class TokenizerStream implements AutoCloseable {
  private boolean closed;

  TokenizerStream() { FakeNative.open.incrementAndGet(); }
  public String decode(int token) throws GenAIException { return "w" + token + " "; }
  @Override public synchronized void close() { if (!closed) { closed = true; FakeNative.open.decrementAndGet(); } }
}
