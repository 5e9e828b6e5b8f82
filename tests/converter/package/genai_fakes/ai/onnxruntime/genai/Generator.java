// Fake of the part of onnxruntime-genai's Java API that GenAiEngine.kt uses: those members with the signatures and
// visibility of src/java/src/main/java/ai/onnxruntime/genai in its sources (0.16-dev, the newest the source mirror
// holds; the pinned release's AAR is compiled against by the Gradle build in .github/workflows/android.yml), and
// nothing the API lacks, so a member GenAiEngine needs but the API lacks fails to compile. genai_engine_check/ drives GenAiEngine
// through FakeNative (test controls, not part of the library).
package ai.onnxruntime.genai;

/** Decodes token n+1 after token n until max_length, each step taking FakeNative.tokenDelayMs. */
public final class Generator implements AutoCloseable {
  private boolean closed;
  private int length;
  private int last;
  private final double maxLength = FakeNative.maxLength;

  public Generator(Model model, GeneratorParams generatorParams) throws GenAIException {
    FakeNative.check("generator");
    FakeNative.open.incrementAndGet();
  }
  public boolean isDone() { return length >= maxLength; }
  public void appendTokens(int[] inputIDs) throws GenAIException { FakeNative.check("append"); length += inputIDs.length; }
  public void generateNextToken() throws GenAIException {
    synchronized (FakeNative.class) { FakeNative.generating++; }
    try {
      if (FakeNative.tokenDelayMs > 0) Thread.sleep(FakeNative.tokenDelayMs);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } finally {
      synchronized (FakeNative.class) { FakeNative.generating--; }
    }
    FakeNative.check("next");
    last++;
    length++;
  }
  public int getLastTokenInSequence(long sequenceIndex) throws GenAIException { return last; }
  @Override public synchronized void close() { if (!closed) { closed = true; FakeNative.open.decrementAndGet(); } }
}
