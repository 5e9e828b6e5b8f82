// Fake of the part of onnxruntime-genai's Java API that GenAiEngine.kt uses: those members with the signatures and
// visibility of src/java/src/main/java/ai/onnxruntime/genai in its sources (0.16-dev, the newest the source mirror
// holds; the pinned release's AAR is compiled against by the Gradle build in .github/workflows/android.yml), and
// nothing the API lacks, so a member GenAiEngine needs but the API lacks fails to compile. genai_engine_check/ drives GenAiEngine
// through FakeNative (test controls, not part of the library).
package ai.onnxruntime.genai;

public final class Model implements AutoCloseable {
  private boolean closed;

  public Model(String modelPath) throws GenAIException {
    if (FakeNative.failAt.equals("link")) throw new UnsatisfiedLinkError("dlopen failed: library \"libonnxruntime-genai.so\" not found");
    FakeNative.check("model");
    FakeNative.open.incrementAndGet();
  }

  @Override public synchronized void close() {
    if (closed) return;
    closed = true;
    if (FakeNative.generating > 0) FakeNative.freedWhileGenerating = true;
    FakeNative.open.decrementAndGet();
  }
}
