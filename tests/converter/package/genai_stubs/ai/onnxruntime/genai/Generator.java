// API stub (signatures of onnxruntime-genai's Java API, src/java/src/main/java/ai/onnxruntime/genai, 0.16):
// lets the tests compile GenAiEngine.kt without the Android AAR. Bodies never run.
package ai.onnxruntime.genai;

public final class Generator implements AutoCloseable {
  public Generator(Model model, GeneratorParams generatorParams) throws GenAIException { throw new UnsupportedOperationException(); }
  public boolean isDone() { throw new UnsupportedOperationException(); }
  public void appendTokens(int[] inputIDs) throws GenAIException { throw new UnsupportedOperationException(); }
  public void generateNextToken() throws GenAIException { throw new UnsupportedOperationException(); }
  public int getLastTokenInSequence(long sequenceIndex) throws GenAIException { throw new UnsupportedOperationException(); }
  @Override public void close() {}
}
