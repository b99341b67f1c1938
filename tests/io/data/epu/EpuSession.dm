<?xml version="1.0"?>
<EpuSessionXml xmlns="http://schemas.datacontract.org/2004/07/Applications.Epu.Persistence" xmlns:i="http://www.w3.org/2001/XMLSchema-instance" xmlns:z="http://schemas.microsoft.com/2003/10/Serialization/" z:Id="1" z:Type="Applications.Epu.Persistence.EpuSessionXml">
  <Id xmlns="http://schemas.datacontract.org/2004/07/Fei.Applications.Common.Types">900001</Id>
  <AutoloaderSlot>3</AutoloaderSlot>
  <ImageFileFormat>Mrc</ImageFileFormat>
  <Name z:Id="2">apoferritin_grid3</Name>
  <Samples z:Id="3">
    <_items z:Id="4" z:Size="1">
      <SampleXml z:Id="5">
        <Id xmlns="http://schemas.datacontract.org/2004/07/Fei.Applications.Common.Types">900002</Id>
        <AtlasId z:Id="6">Z:\DoseFractions\atlas\Sample3\Atlas\Atlas.dm</AtlasId>
        <GridSquares xmlns:a="http://schemas.microsoft.com/2003/10/Serialization/Arrays" z:Id="7">
          <a:m_serializationArray xmlns:b="http://schemas.datacontract.org/2004/07/System.Collections.Generic" z:Id="8" z:Size="2">
            <b:KeyValuePairOfintSerializedReferenceOfGridSquareXml_PsqDC3X0m6koiAE_P>
              <b:key>1001</b:key>
              <b:value xmlns:c="http://schemas.datacontract.org/2004/07/Fei.Applications.Common.Types" z:Id="9">
                <c:FileName z:Id="10">Metadata\GridSquare_1001.dm</c:FileName>
              </b:value>
            </b:KeyValuePairOfintSerializedReferenceOfGridSquareXml_PsqDC3X0m6koiAE_P>
            <b:KeyValuePairOfintSerializedReferenceOfGridSquareXml_PsqDC3X0m6koiAE_P>
              <b:key>1002</b:key>
              <b:value xmlns:c="http://schemas.datacontract.org/2004/07/Fei.Applications.Common.Types" z:Id="11">
                <c:FileName z:Id="12">Metadata\GridSquare_1002.dm</c:FileName>
              </b:value>
            </b:KeyValuePairOfintSerializedReferenceOfGridSquareXml_PsqDC3X0m6koiAE_P>
          </a:m_serializationArray>
        </GridSquares>
      </SampleXml>
    </_items>
    <_size>1</_size>
  </Samples>
</EpuSessionXml>
