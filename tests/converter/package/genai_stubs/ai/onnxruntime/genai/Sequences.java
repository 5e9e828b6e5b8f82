// API stub (signatures of onnxruntime-genai's Java API, src/java/src/main/java/ai/onnxruntime/genai, 0.16):
// lets the tests compile GenAiEngine.kt without the Android AAR. Bodies never run.
package ai.onnxruntime.genai;

public final class Sequences implements AutoCloseable {
  public long numSequences() { throw new UnsupportedOperationException(); }
  public int[] getSequence(long sequenceIndex) { throw new UnsupportedOperationException(); }
  @Override public void close() {}
}
