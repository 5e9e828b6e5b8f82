// Fake of the part of onnxruntime-genai's Java API that GenAiEngine.kt uses: those members with the signatures and
// visibility of src/java/src/main/java/ai/onnxruntime/genai in its sources (0.16-dev, the newest the source mirror
// holds; the pinned release's AAR is compiled against by the Gradle build in .github/workflows/android.yml), and
// nothing the API lacks, so a member GenAiEngine needs but the API lacks fails to compile. genai_engine_check/ drives GenAiEngine
// through FakeNative (test controls, not part of the library).
package ai.onnxruntime.genai;

public final class GeneratorParams implements AutoCloseable {
  private boolean closed;

  public GeneratorParams(Model model) throws GenAIException { FakeNative.check("params"); FakeNative.open.incrementAndGet(); }
  public void setSearchOption(String optionName, double value) throws GenAIException {
    if (optionName.equals("max_length")) FakeNative.maxLength = value;
  }
  public void setSearchOption(String optionName, boolean value) throws GenAIException {}
  @Override public synchronized void close() { if (!closed) { closed = true; FakeNative.open.decrementAndGet(); } }
}
